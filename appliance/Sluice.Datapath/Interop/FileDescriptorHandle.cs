using Microsoft.Win32.SafeHandles;

namespace Sluice.Datapath.Interop;

/// <summary>An owned file descriptor (a map or program fd we created or opened).</summary>
public sealed class FileDescriptorHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public FileDescriptorHandle(int fd)
        : base(ownsHandle: true)
    {
        SetHandle(fd);
    }

    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => Tmds.Linux.LibC.close((int)handle) == 0;
}
