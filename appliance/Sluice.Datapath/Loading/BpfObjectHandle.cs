using System.Runtime.InteropServices;
using Sluice.Datapath.Interop;

namespace Sluice.Datapath.Loading;

/// <summary>An open libbpf bpf_object. Maps and programs inside it are borrowed from it.</summary>
internal sealed class BpfObjectHandle : SafeHandle
{
    public BpfObjectHandle(nint obj)
        : base(0, ownsHandle: true)
    {
        SetHandle(obj);
    }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        Libbpf.ObjectClose(handle);
        return true;
    }
}
