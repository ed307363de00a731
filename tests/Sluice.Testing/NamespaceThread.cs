using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using Sluice.Datapath.Namespaces;

namespace Sluice.Testing;

/// <summary>
/// One thread that lives inside a network namespace and runs work items in order.
/// Test runs, devmap writes and attachments must happen in the namespace whose
/// interfaces they name; this keeps them there.
/// </summary>
public sealed class NamespaceThread : IDisposable
{
    private readonly BlockingCollection<Action> work = [];
    private readonly Thread thread;

    public NamespaceThread(string netns)
    {
        var entered = new TaskCompletionSource();
        thread = new Thread(() =>
        {
            try
            {
                NetworkNamespace.Enter(netns);
                entered.SetResult();
            }
            catch (Exception ex)
            {
                entered.SetException(ex);
                return;
            }
            foreach (var item in work.GetConsumingEnumerable())
            {
                item();
            }
        })
        {
            IsBackground = true,
            Name = $"netns:{netns}",
        };
        thread.Start();
        entered.Task.GetAwaiter().GetResult();
    }

    public T Run<T>(Func<T> function)
    {
        T? result = default;
        ExceptionDispatchInfo? failure = null;
        using var done = new ManualResetEventSlim();
        work.Add(() =>
        {
            try
            {
                result = function();
            }
            catch (Exception ex)
            {
                failure = ExceptionDispatchInfo.Capture(ex);
            }
            finally
            {
                done.Set();
            }
        });
        done.Wait();
        failure?.Throw();
        return result!;
    }

    public void Run(Action action) => Run(() =>
    {
        action();
        return 0;
    });

    public void Dispose()
    {
        work.CompleteAdding();
        thread.Join(TimeSpan.FromSeconds(10));
    }
}
