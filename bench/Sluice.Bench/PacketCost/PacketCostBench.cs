using System.Net;
using System.Runtime.InteropServices;
using Sluice.Bench.Reporting;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Maps;
using Sluice.Datapath.Programming;
using Sluice.Datapath.Testing;
using Sluice.Testing.Packets;

namespace Sluice.Bench.PacketCost;

/// <summary>struct sluice_bench_frame (bench/bpf/sluice_bench.c).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct BenchFrame
{
    public fixed byte Bytes[64];
    public uint VarySourcePort;
    public uint Sequence;
    public uint ForwardIfindex;
    public fixed byte ForwardDestinationMac[6];
    public fixed byte ForwardSourceMac[6];
}

/// <summary>
/// Part 1: nanoseconds per packet through BPF_PROG_TEST_RUN with a large repeat count.
/// Every figure is the median of several runs; every Sluice run is checked against the
/// program's own counters (flow hits or new flows equal to the repeat count, no drop),
/// so the path timed is the path named.
/// </summary>
public static class PacketCostBench
{
    private static readonly IPAddress Vip = IPAddress.Parse("198.18.100.1");

    public static PartResult Run(bool quick, Action<string> log)
    {
        var started = DateTimeOffset.UtcNow;
        int[] serviceCounts = Environment.GetEnvironmentVariable("SLUICE_BENCH_SERVICES") is { } only ? [int.Parse(only)] : quick ? [1, 1_000] : [1, 1_000, 10_000, 100_000];
        var repeat = quick ? 200_000 : 1_000_000;
        // Cold runs fill the tables: a smaller table (BENCH_FLOWS) needs fewer of them.
        var coldRepeat = int.Parse(Environment.GetEnvironmentVariable("SLUICE_BENCH_COLD_REPEAT") ?? $"{repeat}");
        var rounds = quick ? 3 : 5;
        var measurements = new List<Measurement>();
        var notes = new List<string> { $"repeat {repeat:N0} per run ({coldRepeat:N0} for cold and refused runs), median of {rounds} runs; 64-byte TCP frames; 10 backends behind each measured service" };
        foreach (var count in serviceCounts)
        {
            log($"packet-cost: {count:N0} service(s)");
            using var bench = new BenchDatapath(maxServices: (uint)Math.Max(64, count + 8), flowTableSize: uint.Parse(Environment.GetEnvironmentVariable("BENCH_FLOWS") ?? "1048576"));
            var backends = Enumerable.Range(10, 10).Select(h => new BackendSpec(IPAddress.Parse($"198.18.2.{h}"), 8080)).ToList();
            bench.Thread.Run(() =>
            {
                bench.Programmer.Apply(new ServiceSpec(Vip, 80, L4Protocol.Tcp, backends) { Mode = ServiceMode.FullNat });
                bench.Programmer.Apply(new ServiceSpec(Vip, 81, L4Protocol.Tcp, backends) { Mode = ServiceMode.Dnat });
                bench.Programmer.Apply(new ServiceSpec(Vip, 82, L4Protocol.Udp, backends) { Mode = ServiceMode.Dnat }); // fills the tables
                // The rest: small services elsewhere, as many as asked, in one batch (each single
                // Apply waits for an RCU grace period: 100,000 of them take minutes).
                bench.Programmer.ApplyAll(Enumerable.Range(2, Math.Max(0, count - 2)).Select(i =>
                    new ServiceSpec(IPAddress.Parse($"198.18.{128 + (i / 50 / 256)}.{i / 50 % 256}"), (ushort)(1000 + (i % 50)), L4Protocol.Tcp, [backends[i % 10]]) { MaglevTableSize = 251 }).ToList());
            });

            var frameMap = new BpfMap<uint, BenchFrame>("sluice_b.bss", bench.Datapath.FindMapFd("sluice_b.bss"));
            double Time(int programFd, byte[] frame, bool vary, out XdpAction action)
            {
                SetFrame(frameMap, frame, vary);
                var results = new List<double>();
                var last = XdpAction.Aborted;
                for (var r = 0; r < rounds; r++)
                {
                    if (vary)
                    {
                        // Every round opens a million new connections into empty tables (they hold
                        // them all): the cold path, tables filling to 95%, never a refusal.
                        bench.Thread.Run(bench.ClearConnections);
                    }
                    // The kernel reports whole nanoseconds per iteration, too coarse for a 4 ns floor:
                    // time the run ourselves (one syscall's overhead spread over the repeats).
                    var (run, elapsed) = bench.Thread.Run(() =>
                    {
                        var watch = System.Diagnostics.Stopwatch.StartNew();
                        var result = ProgramTestRun.Run(programFd, frame, bench.ClientInterface, vary ? coldRepeat : repeat);
                        return (result, watch.Elapsed);
                    });
                    results.Add(elapsed.TotalNanoseconds / (vary ? coldRepeat : repeat));
                    last = run.Action;
                }
                action = last;
                return Median(results);
            }

            var ack = Frame(80, tcpFlags: 0x10);
            var floor = Time(bench.Datapath.FindProgramFd("bench_xdp_tx"), ack, vary: false, out _);
            var restore = Time(bench.Datapath.FindProgramFd("bench_restore_tx"), ack, vary: false, out _);
            var restoreVary = Time(bench.Datapath.FindProgramFd("bench_restore_tx"), ack, vary: true, out _);
            measurements.Add(new("packet-cost", "xdp_tx floor", $"{count}", floor, "ns"));
            measurements.Add(new("packet-cost", "wrapper: restore + XDP_TX", $"{count}", restore, "ns"));
            measurements.Add(new("packet-cost", "wrapper: restore + new port + XDP_TX", $"{count}", restoreVary, "ns"));

            var hot = bench.Datapath.FindProgramFd("bench_new_flow_hot");
            foreach (var (name, port, newFlows, vary) in new[]
            {
                ("established fullnat", 80, false, false), ("established dnat", 81, false, false),
                ("new flow fullnat, hot", 80, true, false), ("new flow dnat, hot", 81, true, false),
                ("new flow fullnat, cold", 80, true, true), ("new flow dnat, cold", 81, true, true),
            })
            {
                if (Environment.GetEnvironmentVariable("SLUICE_BENCH_CASE") is { } onlyCase && !name.Contains(onlyCase, StringComparison.Ordinal))
                {
                    continue; // profiling one case: the inner loop of a datapath change
                }
                var frame = Frame(port, tcpFlags: (byte)(newFlows ? 0x02 : 0x10));
                if (!newFlows)
                {
                    bench.Thread.Run(() => bench.Establish(Frame(port, tcpFlags: 0x02), frameMap));
                }
                var (hitsBefore, newBefore, dropsBefore) = Counters(bench);
                var reasonsBefore = DropsByReason(bench);
                var countersBefore = AllCounters(bench);
                var ns = Time(newFlows && !vary ? hot : bench.Datapath.ProgramFd, frame, vary, out var action);
                var (hits, news, drops) = Counters(bench);
                var expected = (ulong)(vary ? coldRepeat : repeat) * (ulong)rounds;
                var proof = newFlows ? news - newBefore : hits - hitsBefore;
                var proven = proof == expected && drops == dropsBefore && action == XdpAction.Redirect;
                var note = $"{(newFlows ? "flow_new" : "flow_hit")} {proof:N0} of {expected:N0}, drops {drops - dropsBefore}, verdict {action}";
                if (!proven)
                {
                    notes.Add($"{name} with {count:N0} services: path NOT proven ({note}; {Changes(bench, reasonsBefore, countersBefore)})");
                }
                var wrapper = vary ? restoreVary : restore;
                measurements.Add(new("packet-cost", name, $"{count}", ns, "ns", note));
                measurements.Add(new("packet-cost", name + " (net of wrapper)", $"{count}", Math.Max(0, ns - (wrapper - floor)), "ns"));
                log($"  {name}: {ns:F1} ns ({ns / floor:F1}x the floor, {floor:F2} ns; wrapper {wrapper:F2} ns); {note}");
            }

            // A full table refuses: new SYNs with every entry taken, each dropped as ConnectionTableFull.
            if (Environment.GetEnvironmentVariable("SLUICE_BENCH_CASE") is not { } caseFilter || "new flow refused, table full".Contains(caseFilter, StringComparison.Ordinal))
            {
                var frame = Frame(80, tcpFlags: 0x02);
                bench.Thread.Run(() => bench.FillConnections(Frame(82, tcpFlags: 0, PacketBuilder.Udp), frameMap));
                var reasonsBefore = DropsByReason(bench);
                var countersBefore = AllCounters(bench);
                SetFrame(frameMap, frame, vary: true);
                var ns = Median(Enumerable.Range(0, rounds).Select(_ => bench.Thread.Run(() =>
                {
                    var watch = System.Diagnostics.Stopwatch.StartNew();
                    ProgramTestRun.Run(bench.Datapath.ProgramFd, frame, bench.ClientInterface, coldRepeat);
                    return watch.Elapsed.TotalNanoseconds / coldRepeat;
                })).ToList());
                var refused = DropsByReason(bench)[DropReason.ConnectionTableFull] - reasonsBefore[DropReason.ConnectionTableFull];
                var expected = (ulong)coldRepeat * (ulong)rounds;
                var note = $"connection_table_full {refused:N0} of {expected:N0}";
                if (refused != expected)
                {
                    notes.Add($"new flow refused, table full with {count:N0} services: path NOT proven ({note}; {Changes(bench, reasonsBefore, countersBefore)})");
                }
                measurements.Add(new("packet-cost", "new flow refused, table full", $"{count}", ns, "ns", note));
                log($"  new flow refused, table full: {ns:F1} ns ({ns / floor:F1}x the floor); {note}");
            }
        }
        return new PartResult("packet-cost", started, quick, measurements, notes);
    }

    internal static byte[] Frame(int port, byte tcpFlags, byte protocol = PacketBuilder.Tcp) => PacketBuilder.Build(new PacketSpec
    {
        Protocol = protocol,
        SourceMac = [0x02, 0, 0, 0, 0x01, 0xaa],
        DestinationMac = [0x02, 0, 0, 0, 0x01, 0x01],
        Source = IPAddress.Parse("198.19.1.10"),
        Destination = Vip,
        SourcePort = 40000,
        DestinationPort = (ushort)port,
        TcpFlags = tcpFlags,
        Payload = new byte[protocol == PacketBuilder.Udp ? 22 : 10], // 64-byte frame: the wrapper restores all of it
    });

    internal static unsafe void SetFrame(BpfMap<uint, BenchFrame> map, byte[] frame, bool vary)
    {
        var value = new BenchFrame { VarySourcePort = vary ? 1u : 0u };
        for (var i = 0; i < 64; i++)
        {
            value.Bytes[i] = frame[i];
        }
        map.Update(0, value);
    }

    private static (ulong Hits, ulong New, ulong Drops) Counters(BenchDatapath bench)
    {
        ulong Sum(PerCpuArray<ulong> array, uint index) => array.Read(index).Aggregate(0UL, (a, b) => a + b);
        var drops = Enum.GetValues<DropReason>().Where(r => r != DropReason.None).Aggregate(0UL, (a, r) => a + Sum(bench.Datapath.Drops, (uint)r));
        return (Sum(bench.Datapath.Counters, (uint)DatapathCounter.FlowHit), Sum(bench.Datapath.Counters, (uint)DatapathCounter.FlowNew), drops);
    }

    private static string Changes(BenchDatapath bench, Dictionary<DropReason, ulong> reasonsBefore, Dictionary<DatapathCounter, ulong> countersBefore)
    {
        var reasons = DropsByReason(bench).Where(r => r.Value > reasonsBefore[r.Key]).Select(r => $"{r.Key} {r.Value - reasonsBefore[r.Key]:N0}");
        var counters = AllCounters(bench).Where(c => c.Value > countersBefore[c.Key]).Select(c => $"{c.Key} {c.Value - countersBefore[c.Key]:N0}");
        return $"drops by reason: {string.Join(", ", reasons)}; counters: {string.Join(", ", counters)}";
    }

    private static Dictionary<DatapathCounter, ulong> AllCounters(BenchDatapath bench) =>
        Enum.GetValues<DatapathCounter>().ToDictionary(c => c, c => bench.Datapath.Counters.Read((uint)c).Aggregate(0UL, (a, b) => a + b));

    private static Dictionary<DropReason, ulong> DropsByReason(BenchDatapath bench) =>
        Enum.GetValues<DropReason>().Where(r => r != DropReason.None)
            .ToDictionary(r => r, r => bench.Datapath.Drops.Read((uint)r).Aggregate(0UL, (a, b) => a + b));

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
