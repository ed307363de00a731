using System.Runtime.InteropServices;
using Sluice.Datapath.Interop;
using Sluice.Datapath.Loading;

namespace Sluice.Datapath.Connections;

/// <summary>
/// One sweeper per pinned datapath: an exclusive flock on its pin directory, held while the
/// sweeper lives (the kernel drops it with the process). Two sweepers would delete each
/// other's freshly marked connections without a grace period, and keys taken again since.
/// </summary>
internal sealed class SweeperLock : IDisposable
{
    private readonly FileDescriptorHandle directory;

    private SweeperLock(FileDescriptorHandle directory) => this.directory = directory;

    public static SweeperLock Acquire(string pinPath)
    {
        var fd = Libc.Open(pinPath, Libc.OpenReadOnlyDirectory);
        if (fd < 0)
        {
            throw new BpfException($"open {pinPath}", Marshal.GetLastPInvokeError());
        }
        var handle = new FileDescriptorHandle(fd);
        if (Libc.Flock(fd, Libc.LockExclusiveNonBlocking) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            throw errno == 11 // EWOULDBLOCK
                ? new DatapathException($"another sweeper already sweeps the datapath pinned at {pinPath} (a second sluiced, or sluice-dp sweep): stop it first")
                : new BpfException($"lock {pinPath}", errno);
        }
        return new SweeperLock(handle);
    }

    public void Dispose() => directory.Dispose();
}
