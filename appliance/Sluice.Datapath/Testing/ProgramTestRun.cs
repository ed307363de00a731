using System.Runtime.InteropServices;
using Sluice.Datapath.Interop;

namespace Sluice.Datapath.Testing;

/// <summary>XDP verdicts (enum xdp_action).</summary>
public enum XdpAction : uint
{
    Aborted = 0,
    Drop = 1,
    Pass = 2,
    Tx = 3,
    Redirect = 4,
}

public sealed record TestRunResult(XdpAction Action, byte[] Output, uint DurationNs);

/// <summary>
/// BPF_PROG_TEST_RUN for an XDP program: one frame in, the verdict and the frame out.
/// Runs in the calling thread's network namespace (FIB lookups and the ingress
/// interface resolve there). Note: with repeat &gt; 1 the kernel reuses one buffer, so
/// later iterations see the program's own output.
/// </summary>
public static unsafe class ProgramTestRun
{
    [StructLayout(LayoutKind.Sequential)]
    private struct XdpMd
    {
        public uint Data;
        public uint DataEnd;
        public uint DataMeta;
        public uint IngressIfindex;
        public uint RxQueueIndex;
        public uint EgressIfindex;
    }

    public static TestRunResult Run(int programFd, ReadOnlySpan<byte> frame, uint ingressIfindex = 0, int repeat = 1)
    {
        var output = new byte[frame.Length + 512];
        var context = new XdpMd { DataEnd = (uint)frame.Length, IngressIfindex = ingressIfindex };
        fixed (byte* input = frame, outputBytes = output)
        {
            var options = new Libbpf.TestRunOptions
            {
                Size = (nuint)sizeof(Libbpf.TestRunOptions),
                DataIn = input,
                DataSizeIn = (uint)frame.Length,
                DataOut = outputBytes,
                DataSizeOut = (uint)output.Length,
                Repeat = repeat,
            };
            if (ingressIfindex != 0)
            {
                options.ContextIn = &context;
                options.ContextSizeIn = (uint)sizeof(XdpMd);
            }
            BpfException.ThrowIfNegative(Libbpf.ProgramTestRun(programFd, &options), "BPF_PROG_TEST_RUN");
            return new TestRunResult((XdpAction)options.ReturnValue, output.AsSpan(0, (int)options.DataSizeOut).ToArray(), options.Duration);
        }
    }

    private const uint BPF_F_TEST_XDP_LIVE_FRAMES = 1u << 1;

    /// <summary>
    /// BPF_PROG_TEST_RUN in live-frames mode (kernel 5.18+): the program runs
    /// <paramref name="repeat"/> times on fresh pages holding <paramref name="frame"/>, and what
    /// it returns really happens (XDP_TX sends out of the ingress interface). A packet generator.
    /// Pages are recycled, so a program that rewrites the frame must write what it needs each time.
    /// </summary>
    public static void RunLive(int programFd, ReadOnlySpan<byte> frame, uint ingressIfindex, int repeat, uint batchSize = 64)
    {
        var context = new XdpMd { DataEnd = (uint)frame.Length, IngressIfindex = ingressIfindex };
        fixed (byte* input = frame)
        {
            var options = new Libbpf.TestRunOptions
            {
                Size = (nuint)sizeof(Libbpf.TestRunOptions),
                DataIn = input,
                DataSizeIn = (uint)frame.Length,
                ContextIn = &context,
                ContextSizeIn = (uint)sizeof(XdpMd),
                Repeat = repeat,
                Flags = BPF_F_TEST_XDP_LIVE_FRAMES,
                BatchSize = batchSize,
            };
            BpfException.ThrowIfNegative(Libbpf.ProgramTestRun(programFd, &options), "BPF_PROG_TEST_RUN (live frames)");
        }
    }
}
