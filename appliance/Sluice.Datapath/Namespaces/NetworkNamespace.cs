namespace Sluice.Datapath.Namespaces;

/// <summary>
/// Runs code inside a named network namespace (/run/netns/NAME). setns(CLONE_NEWNET)
/// changes only the calling thread, so the work runs on a thread of its own; interface
/// names, netlink attachments and devmap ifindexes are then resolved in that namespace.
/// </summary>
public static class NetworkNamespace
{
    public static T Run<T>(string name, Func<T> work)
    {
        T? result = default;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                Enter(name);
                result = work();
            }
            catch (Exception ex)
            {
                failure = ex;
            }
        })
        {
            Name = $"netns:{name}",
        };
        thread.Start();
        thread.Join();
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
        }
        return result!;
    }

    public static void Run(string name, Action work) => Run(name, () =>
    {
        work();
        return 0;
    });

    /// <summary>Moves the calling thread into the namespace; it stays there.</summary>
    public static void Enter(string name)
    {
        var path = Path.Combine("/run/netns", name);
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        if (Tmds.Linux.LibC.setns((int)handle.DangerousGetHandle(), Tmds.Linux.LibC.CLONE_NEWNET) != 0)
        {
            throw new Interop.BpfException($"setns into {path}", Tmds.Linux.LibC.errno);
        }
    }
}
