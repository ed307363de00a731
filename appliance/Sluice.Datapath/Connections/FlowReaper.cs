using Sluice.Datapath.Abi;
using Sluice.Datapath.Interop;

namespace Sluice.Datapath.Connections;

/// <summary>
/// The reaper program (bpf/lib/reap.h), run with BPF_PROG_TEST_RUN: marks a forward half DEAD
/// if it is still exactly as the sweeper read it, atomically against the datapath. Deleting it
/// from here instead would hand its element to the next new connection at once, while a CPU may
/// still hold it and write into it.
/// </summary>
public sealed unsafe class FlowReaper(int programFd)
{
    public ReapResult Reap(Tuple5 key, FlowEntry seen)
    {
        var request = new ReapRequest(key, seen.CreatedNs, seen.LastSeenNs, seen.ReplySeenNs, seen.Word);
        var options = new Libbpf.TestRunOptions
        {
            Size = (nuint)sizeof(Libbpf.TestRunOptions),
            ContextIn = &request,
            ContextSizeIn = (uint)sizeof(ReapRequest),
        };
        BpfException.ThrowIfNegative(Libbpf.ProgramTestRun(programFd, &options), "BPF_PROG_TEST_RUN of the reaper");
        return (ReapResult)options.ReturnValue;
    }
}
