using Sluice.Datapath.Interop;

namespace Sluice.Datapath.Connections;

/// <summary>
/// Waits for an RCU grace period: membarrier(MEMBARRIER_CMD_GLOBAL) is synchronize_rcu(), and
/// every BPF program runs inside an RCU read-side section, so once it returns no CPU still runs
/// a program that found a map element before the call. Not available on nohz_full kernels
/// (EINVAL): the caller then waits a sweep instead.
/// </summary>
public static class RcuGracePeriod
{
    public static bool TryWait() => Libc.Membarrier(Libc.MembarrierCommandGlobal) == 0;
}
