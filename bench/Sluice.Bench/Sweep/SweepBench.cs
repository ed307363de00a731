using System.Net;
using Sluice.Bench.PacketCost;
using Sluice.Bench.Reporting;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Connections;
using Sluice.Datapath.Maps;
using Sluice.Datapath.Programming;
using Sluice.Testing.Packets;

namespace Sluice.Bench.Sweep;

/// <summary>
/// Part 6: the connection sweeper. Expired connections are deleted only by it, so its
/// deletions per second bound how many short-lived connections per second the appliance
/// sustains once the tables are full of expired ones; a sweep that expires nothing is the
/// price paid every sweep interval. Tables filled with real connections (UDP, dnat) opened
/// by the program itself.
/// </summary>
public static class SweepBench
{
    public static PartResult Run(bool quick, Action<string> log)
    {
        var started = DateTimeOffset.UtcNow;
        var measurements = new List<Measurement>();
        foreach (var connections in quick ? new[] { 10_000, 100_000 } : [100_000, 1_000_000])
        {
            using var bench = new BenchDatapath(maxServices: 64, flowTableSize: (uint)connections);
            var vip = IPAddress.Parse("198.18.100.1");
            var frameMap = new BpfMap<uint, BenchFrame>("sluice_b.bss", bench.Datapath.FindMapFd("sluice_b.bss"));
            var (idle, expired, deleted) = bench.Thread.Run(() =>
            {
                bench.Programmer.Apply(new ServiceSpec(vip, 82, L4Protocol.Udp, [new BackendSpec(IPAddress.Parse("198.18.2.10"), 8080)]) { Mode = ServiceMode.Dnat });
                bench.FillConnections(PacketCostBench.Frame(82, tcpFlags: 0, PacketBuilder.Udp), frameMap);
                var sweeper = new ConnectionSweeper(bench.Datapath, new ConnectionTimeouts());
                var now = ConnectionTable.NowNs();
                var idle = Enumerable.Range(0, 3).Select(_ => sweeper.Sweep(now).Duration.TotalMilliseconds).Order().ElementAt(1);
                var result = sweeper.Sweep(now + 3600_000_000_000); // an hour on: every UDP connection expired
                return (idle, result.Duration.TotalMilliseconds, result.TotalExpired);
            });
            var variant = $"{connections:N0} connections";
            measurements.Add(new("sweep", "sweep, nothing expired", variant, idle, "ms"));
            measurements.Add(new("sweep", "sweep, all expired", variant, expired, "ms", $"{deleted:N0} deleted"));
            measurements.Add(new("sweep", "deletions per second", variant, deleted / (expired / 1000), "/s"));
            log($"sweep: {variant}: nothing expired {idle:F1} ms; all expired {expired:F1} ms ({deleted:N0} deleted, {deleted / (expired / 1000):N0}/s)");
        }
        return new PartResult("sweep", started, quick, measurements,
        [
            "forward halves read with BPF_MAP_LOOKUP_BATCH, reverse halves in place (mmap); each expired connection is marked dead by the reaper program (one BPF_PROG_TEST_RUN), then, after one RCU grace period for the whole sweep, the dead are deleted in batches",
            "deletions per second are what the sweeper frees once connections expire: the ceiling on short-lived connections per second sustained over time",
        ]);
    }
}
