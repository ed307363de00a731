using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Connections;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Programming;
using Sluice.Testing;
using Xunit.Abstractions;

namespace Sluice.Tests.EndToEnd;

/// <summary>
/// A SYN flood of ten times the flow table, from spoofed sources, through the VIP that
/// carries 50 established streams: the flood fills the handshake budget and no more,
/// every stream keeps every byte, and the flood's state is swept within its timeout (the
/// backends' SYN-ACK retransmissions to the spoofed sources must not keep it alive).
/// The datapath is loaded here (not by <see cref="LoadBalancerTopology"/>) for a small
/// flow table, and a sweeper runs as sluiced would run it.
/// </summary>
public sealed class SynFloodTests(ITestOutputHelper output)
{
    private const uint FlowTableSize = 4096;
    private const int FloodSize = 10 * (int)FlowTableSize;
    private static readonly IPEndPoint Vip = new(IPAddress.Parse("198.18.100.13"), 9000);
    private static readonly ConnectionTimeouts Timeouts = new() { TcpHandshake = TimeSpan.FromSeconds(2) };
    private static readonly TimeSpan SweepInterval = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan FloodTimeLimit = TimeSpan.FromSeconds(30);

    [RootFact]
    public async Task FiftyStreamsKeepEveryByteThroughASynFloodOfTenTimesTheFlowTable()
    {
        using var network = new NetworkTopology();
        var options = new DatapathOptions { MaxServices = 64, MaxBackends = 256, FlowTableSize = FlowTableSize };
        XdpDatapath? datapath = null;
        var connections = new List<StreamingConnection>();
        using var stopSweeper = new CancellationTokenSource();
        Task sweeping = Task.CompletedTask;
        using var stopStreams = new CancellationTokenSource();
        var streams = new List<Task>();
        try
        {
            datapath = network.BalancerThread.Run(() => XdpDatapath.Load(options, NullLogger.Instance));
            network.BalancerThread.Run(() =>
            {
                var programmer = new DatapathProgrammer(datapath);
                programmer.SetSnatAddresses([NetworkTopology.SnatAddress]);
                programmer.Apply(new ServiceSpec(Vip.Address, (ushort)Vip.Port, L4Protocol.Tcp,
                    [.. Enumerable.Range(1, 3).Select(n => new BackendSpec(NetworkTopology.BackendAddress(n), BackendServer.StreamPort))])
                {
                    Mode = ServiceMode.FullNat,
                });
                datapath.AttachAll(NetworkTopology.BalancerInterfaces, AttachMode.Native);
            });
            var limit = options.EffectiveHandshakeLimit;

            // The sweeper, as sluiced runs it: the only deleter of connections.
            var sweeper = new ConnectionSweeper(datapath, Timeouts);
            var sweeps = new SweepLog();
            sweeping = Task.Run(async () =>
            {
                while (!stopSweeper.IsCancellationRequested)
                {
                    sweeps.Add(sweeper.Sweep(ConnectionTable.NowNs()));
                    try
                    {
                        await Task.Delay(SweepInterval, stopSweeper.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }
            });

            for (var i = 0; i < 50; i++)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                connections.Add(await StreamingConnection.Open(network.ClientSocket(SocketType.Stream, ProtocolType.Tcp), Vip, timeout.Token));
            }
            Assert.Equal(3, connections.Select(c => c.Backend).Distinct().Count());
            streams.AddRange(connections.Select((c, id) => Task.Run(() => c.Stream(id, stopStreams.Token))));
            await StreamingConnection.EveryOneProgresses(connections, "before the flood");
            await Poll.Until(() => sweeper.HandshakesInProgress() == 0, "the 50 streams' handshakes proven before the flood");

            // The flood: bare SYNs from spoofed sources, into lbc from the client's namespace.
            var seed = Environment.TickCount;
            var frames = SynFlood.Frames(network, Vip, FloodSize, seed);
            var dropsBefore = Drops(datapath, DropReason.HandshakeLimit);
            var newBefore = Counter(datapath, DatapathCounter.FlowNew);
            var otherDropsBefore = OtherDrops(datapath);
            var tableBefore = datapath.Flows.ReadAll().Count;
            var vethDropsBefore = long.Parse(network.Client.Exec("cat", "/sys/class/net/c0/statistics/tx_dropped").Trim());
            sweeps.StartWatching();
            var flood = Stopwatch.StartNew();
            int sent;
            using (var flooder = new NamespaceThread(network.Client.Name))
            {
                sent = flooder.Run(() => SynFlood.Send(network.Client, frames, FloodTimeLimit));
            }
            flood.Stop();
            var drain = Stopwatch.StartNew(); // the flood's state drains from here
            await StreamingConnection.EveryOneProgresses(connections, "right after the flood");
            var floodDrops = Drops(datapath, DropReason.HandshakeLimit) - dropsBefore;
            var floodOpened = Counter(datapath, DatapathCounter.FlowNew) - newBefore;
            var otherDrops = OtherDrops(datapath).Select((d, i) => d - otherDropsBefore[i]).ToArray();
            var vethDrops = long.Parse(network.Client.Exec("cat", "/sys/class/net/c0/statistics/tx_dropped").Trim()) - vethDropsBefore;
            // Sweeps still running when the flood ended may have let more of it in: count them too.
            var peak = await sweeps.StopWatchingAfterTwoMoreSweeps();
            output.WriteLine($"seed {seed}: {sent} SYNs sent in {flood.Elapsed.TotalMilliseconds:F0} ms; veth drops {vethDrops}; " +
                $"HandshakeLimit drops {floodDrops}; connections opened {floodOpened}; other drops " +
                $"[{string.Join(", ", otherDrops.Select((d, i) => (d, i)).Where(x => x.d > 0).Select(x => $"{(DropReason)x.i}={x.d}"))}]; " +
                $"handshake limit {limit}; peak handshakes in progress {peak.HandshakesInProgress}, peak table {peak.Connections} (before {tableBefore})");

            Assert.Equal(FloodSize, sent);
            // The client's veth drops what its peer's XDP ring cannot take in time (not
            // necessarily ours: its counter also counts the namespace's own traffic): a few tenths
            // of a percent on a busy two-core machine. The flood must still have arrived.
            Assert.True(vethDrops < FloodSize / 100, $"{vethDrops} frames dropped by the sending veth");
            // Every SYN that arrived was either refused for the budget or opened a connection, nothing else.
            var accounted = floodDrops + floodOpened;
            Assert.True(accounted <= (ulong)sent && accounted >= (ulong)(sent - vethDrops), $"{accounted} SYNs accounted for of {sent} sent");
            Assert.All(otherDrops, d => Assert.Equal(0UL, d));
            // The flood was really refused beyond the budget: at most the budget, plus what
            // the sweeper freed during the flood, got in.
            Assert.True(floodDrops >= (ulong)(sent - limit - peak.SweptUnproven), $"only {floodDrops} SYNs refused of {sent}");
            Assert.True(peak.HandshakesInProgress <= limit, $"{peak.HandshakesInProgress} handshakes in progress, over the budget of {limit}");
            Assert.True(peak.Connections <= 50 + limit, $"{peak.Connections} connections in a table holding 50 streams and a budget of {limit}");

            // The flood's state goes within its timeout, plus the sweep and touch granularity:
            // the backends' SYN-ACK retransmissions do not keep an unproven handshake alive.
            var within = Timeouts.TcpHandshake + TimeSpan.FromSeconds(2);
            await Poll.Until(
                () =>
                {
                    Assert.False(sweeping.IsCompleted, $"the sweeper stopped: {sweeping.Exception?.InnerException}");
                    return ConnectionTable.Read(datapath.Flows, datapath.Nat).Connections.All(c => c.State != ConnectionState.Handshake);
                },
                "no connection left in its handshake", within);
            drain.Stop();
            await Poll.Until(() => sweeper.HandshakesInProgress() == 0, "the handshake budget back to zero in use", TimeSpan.FromSeconds(2));
            var left = ConnectionTable.Read(datapath.Flows, datapath.Nat);
            output.WriteLine($"handshake state gone {drain.Elapsed.TotalMilliseconds:F0} ms after the flood ended " +
                $"(timeout {Timeouts.TcpHandshake.TotalSeconds:F0} s); table now {left.Connections.Count} connections, {left.OrphanReverseHalves.Count} orphan reverse halves");

            // The streams still deliver, and a new connection gets through.
            await StreamingConnection.EveryOneProgresses(connections, "after the flood's state was swept");
            Assert.Equal(50, left.Connections.Count(c => c.State == ConnectionState.Established));
            using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
            using (var fresh = await StreamingConnection.Open(network.ClientSocket(SocketType.Stream, ProtocolType.Tcp), Vip, timeout.Token))
            {
                Assert.StartsWith("backend-", fresh.Backend);
            }

            stopStreams.Cancel();
            await Task.WhenAll(streams);
            foreach (var connection in connections)
            {
                Assert.Null(connection.Failure);
                Assert.Equal(connection.Sent, connection.Echoed); // every byte sent came back
            }
            network.AssertNoChecksumErrors();
            stopSweeper.Cancel();
            await sweeping; // a sweeper failure fails the test
        }
        finally
        {
            stopStreams.Cancel();
            stopSweeper.Cancel();
            try
            {
                await Task.WhenAll(streams.Append(sweeping)).WaitAsync(TimeSpan.FromSeconds(15));
            }
            catch (Exception)
            {
                // already reported above, or the test failed for another reason
            }
            foreach (var connection in connections)
            {
                connection.Dispose();
            }
            if (datapath is not null && network.Built)
            {
                network.BalancerThread.Run(() => datapath.Dispose());
            }
        }
    }

    private static ulong Drops(XdpDatapath datapath, DropReason reason) => datapath.Drops.Read((uint)reason).Aggregate(0UL, (a, b) => a + b);

    private static ulong Counter(XdpDatapath datapath, DatapathCounter counter) => datapath.Counters.Read((uint)counter).Aggregate(0UL, (a, b) => a + b);

    /// <summary>Every drop reason but the handshake budget, indexed by reason.</summary>
    private static ulong[] OtherDrops(XdpDatapath datapath) =>
        [.. Enumerable.Range(0, CounterSlots.Drops).Select(i => i == (int)DropReason.HandshakeLimit ? 0 : Drops(datapath, (DropReason)i))];


    /// <summary>What the sweeper saw: while watching, the peaks of the table and the budget in use, and the unproven connections it swept.</summary>
    private sealed class SweepLog
    {
        private readonly Lock gate = new();
        private bool watching;
        private (long HandshakesInProgress, int Connections, int SweptUnproven) peak;

        public void Add(SweepResult result)
        {
            Interlocked.Increment(ref sweepsSeen);
            lock (gate)
            {
                if (watching)
                {
                    peak = (Math.Max(peak.HandshakesInProgress, result.HandshakesInProgress), Math.Max(peak.Connections, result.Connections.Count),
                        peak.SweptUnproven + result.HandshakesFreed);
                }
            }
        }

        public void StartWatching()
        {
            lock (gate)
            {
                watching = true;
                peak = default;
            }
        }

        private int sweepsSeen;

        public async Task<(long HandshakesInProgress, int Connections, int SweptUnproven)> StopWatchingAfterTwoMoreSweeps()
        {
            var seen = Volatile.Read(ref sweepsSeen);
            await Poll.Until(() => Volatile.Read(ref sweepsSeen) >= seen + 2, "two more sweeps", TimeSpan.FromSeconds(10));
            lock (gate)
            {
                watching = false;
                return peak;
            }
        }
    }
}
