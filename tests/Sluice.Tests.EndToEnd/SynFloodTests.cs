using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Connections;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Programming;
using Sluice.Testing;
using Sluice.Testing.Packets;
using Xunit.Abstractions;

namespace Sluice.Tests.EndToEnd;

/// <summary>
/// A SYN flood of ten times the flow table, from spoofed sources, through the VIP that
/// carries 50 established streams: the flood fills the handshake budget and no more,
/// every stream keeps every byte, and the flood's state is swept within its timeout (counted
/// from the last SYN-ACK the backends retransmitted, see the drain below).
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
            await EveryConnectionProgresses(connections, "before the flood");
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
            await EveryConnectionProgresses(connections, "right after the flood");
            var floodDrops = Drops(datapath, DropReason.HandshakeLimit) - dropsBefore;
            var floodOpened = Counter(datapath, DatapathCounter.FlowNew) - newBefore;
            var otherDrops = OtherDrops(datapath).Select((d, i) => d - otherDropsBefore[i]).ToArray();
            var vethDrops = long.Parse(network.Client.Exec("cat", "/sys/class/net/c0/statistics/tx_dropped").Trim()) - vethDropsBefore;
            var peak = sweeps.StopWatching();
            output.WriteLine($"seed {seed}: {sent} SYNs sent in {flood.Elapsed.TotalMilliseconds:F0} ms; veth drops {vethDrops}; " +
                $"HandshakeLimit drops {floodDrops}; connections opened {floodOpened}; other drops " +
                $"[{string.Join(", ", otherDrops.Select((d, i) => (d, i)).Where(x => x.d > 0).Select(x => $"{(DropReason)x.i}={x.d}"))}]; " +
                $"handshake limit {limit}; peak handshakes in progress {peak.HandshakesInProgress}, peak table {peak.Connections} (before {tableBefore})");

            Assert.Equal(FloodSize, sent);
            Assert.Equal(0, vethDrops);
            // Every SYN was either refused for the budget or opened a connection, nothing else.
            Assert.Equal((ulong)sent, floodDrops + floodOpened);
            Assert.All(otherDrops, d => Assert.Equal(0UL, d));
            // The flood was really refused beyond the budget: at most the budget, plus what
            // the sweeper freed during the flood, got in.
            Assert.True(floodDrops >= (ulong)(sent - limit - peak.SweptUnproven), $"only {floodDrops} SYNs refused of {sent}");
            Assert.True(peak.HandshakesInProgress <= limit, $"{peak.HandshakesInProgress} handshakes in progress, over the budget of {limit}");
            Assert.True(peak.Connections <= 50 + limit, $"{peak.Connections} connections in a table holding 50 streams and a budget of {limit}");

            // The flood's state goes within its timeout, plus the sweep and touch granularity:
            // the backends' SYN-ACK retransmissions do not keep an unproven handshake alive.
            var within = Timeouts.TcpHandshake + TimeSpan.FromSeconds(2);
            var refreshedByReplies = 0L;
            await Poll.Until(
                () =>
                {
                    Assert.False(sweeping.IsCompleted, $"the sweeper stopped: {sweeping.Exception?.InnerException}");
                    var handshakes = ConnectionTable.Read(datapath.Flows, datapath.Nat).Connections.Where(c => c.State == ConnectionState.Handshake).ToList();
                    foreach (var c in handshakes)
                    {
                        if (c.Reverse is { } reverse && reverse.LastSeenNs > reverse.CreatedNs)
                        {
                            refreshedByReplies = Math.Max(refreshedByReplies, (long)(reverse.LastSeenNs - reverse.CreatedNs));
                        }
                    }
                    return handshakes.Count == 0;
                },
                "no connection left in its handshake", within);
            drain.Stop();
            await Poll.Until(() => sweeper.HandshakesInProgress() == 0, "the handshake budget back to zero in use", TimeSpan.FromSeconds(2));
            var left = ConnectionTable.Read(datapath.Flows, datapath.Nat);
            output.WriteLine($"handshake state gone {drain.Elapsed.TotalMilliseconds:F0} ms after the flood ended " +
                $"(timeout {Timeouts.TcpHandshake.TotalSeconds:F0} s; backend replies kept unproven handshakes fresh up to {refreshedByReplies / 1e6:F0} ms after their SYN); table now {left.Connections.Count} connections, {left.OrphanReverseHalves.Count} orphan reverse halves");

            // The streams still deliver, and a new connection gets through.
            await EveryConnectionProgresses(connections, "after the flood's state was swept");
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

    /// <summary>Bounded wait until every connection has echoed another 64 KiB, or fail naming the stuck ones.</summary>
    private static async Task EveryConnectionProgresses(List<StreamingConnection> connections, string when)
    {
        var start = connections.Select(c => c.Echoed).ToArray();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            if (connections.Select((c, i) => c.Echoed - start[i] >= 64 * 1024).All(done => done))
            {
                return;
            }
            var failed = connections.FirstOrDefault(c => c.Failure is not null);
            Assert.True(failed is null, $"{when}: a connection to {failed?.Backend} failed: {failed?.Failure}");
            await Task.Delay(50);
        }
        var stuck = connections.Where((c, i) => c.Echoed - start[i] < 64 * 1024).Select(c => c.Backend).ToList();
        Assert.Fail($"{when}: {stuck.Count} connection(s) made no progress within 20 s ({string.Join(", ", stuck.Distinct())})");
    }

    /// <summary>What the sweeper saw: while watching, the peaks of the table and the budget in use, and the unproven connections it swept.</summary>
    private sealed class SweepLog
    {
        private readonly Lock gate = new();
        private bool watching;
        private (long HandshakesInProgress, int Connections, int SweptUnproven) peak;

        public void Add(SweepResult result)
        {
            lock (gate)
            {
                if (watching)
                {
                    peak = (Math.Max(peak.HandshakesInProgress, result.HandshakesInProgress), Math.Max(peak.Connections, result.Connections),
                        peak.SweptUnproven + result.Expired[ExpiryReason.Idle]);
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

        public (long HandshakesInProgress, int Connections, int SweptUnproven) StopWatching()
        {
            lock (gate)
            {
                watching = false;
                return peak;
            }
        }
    }
}

/// <summary>
/// Bare TCP SYNs from spoofed sources in 198.19.128.0/17 (inside the test range, away from
/// the client's 198.19.10.0/24), sent as Ethernet frames on the client namespace's veth
/// with an AF_PACKET socket.
/// </summary>
internal static class SynFlood
{
    private const int AfPacket = 17;
    private const int SockRaw = 3;
    private const ushort EthPIp = 0x0800;
    private const int Enobufs = 105;
    private const int Eagain = 11;

    public static List<byte[]> Frames(NetworkTopology network, IPEndPoint vip, int count, int seed)
    {
        var sourceMac = Mac(network.Client.Exec("cat", "/sys/class/net/c0/address"));
        var destinationMac = Mac(network.Balancer.Exec("cat", "/sys/class/net/lbc/address"));
        var random = new Random(seed);
        var seen = new HashSet<(int, ushort)>();
        var frames = new List<byte[]>(count);
        while (frames.Count < count)
        {
            var host = random.Next(0, 1 << 15);
            var port = (ushort)random.Next(1024, 65536);
            if (!seen.Add((host, port)))
            {
                continue;
            }
            frames.Add(PacketBuilder.Build(new PacketSpec
            {
                SourceMac = sourceMac,
                DestinationMac = destinationMac,
                Source = new IPAddress([198, 19, (byte)(128 | (host >> 8)), (byte)host]),
                Destination = vip.Address,
                SourcePort = port,
                DestinationPort = (ushort)vip.Port,
                TcpFlags = 0x02,
                TcpSequence = (uint)random.NextInt64(0, 1L << 32),
                Identification = (ushort)random.Next(0, 65536),
            }));
        }
        return frames;
    }

    /// <summary>
    /// Sends every frame once (retrying only a full device queue), on a thread inside the
    /// client's namespace; stops at the time limit. Returns how many were sent.
    /// </summary>
    public static int Send(TestNamespace client, List<byte[]> frames, TimeSpan limit)
    {
        var ifindex = int.Parse(client.Exec("cat", "/sys/class/net/c0/ifindex").Trim());
        // Protocol 0: the socket sends and never receives.
        var fd = socket(AfPacket, SockRaw, 0);
        if (fd < 0)
        {
            throw new InvalidOperationException($"socket(AF_PACKET, SOCK_RAW) failed: errno {Marshal.GetLastPInvokeError()}");
        }
        try
        {
            var address = new byte[20]; // struct sockaddr_ll
            BitConverter.TryWriteBytes(address.AsSpan(0), (ushort)AfPacket);
            address[2] = EthPIp >> 8; // sll_protocol, network order
            address[3] = EthPIp & 0xff;
            BitConverter.TryWriteBytes(address.AsSpan(4), ifindex);
            address[11] = 6; // sll_halen
            frames[0].AsSpan(0, 6).CopyTo(address.AsSpan(12));
            var clock = Stopwatch.StartNew();
            var sent = 0;
            while (sent < frames.Count && clock.Elapsed < limit)
            {
                var frame = frames[sent];
                if (sendto(fd, frame, frame.Length, 0, address, address.Length) == frame.Length)
                {
                    sent++;
                    // Pace a little: the veth's ring (256 frames) must not overflow into drops.
                    if (sent % 64 == 0)
                    {
                        Thread.Sleep(0);
                    }
                    continue;
                }
                var errno = Marshal.GetLastPInvokeError();
                if (errno is not (Enobufs or Eagain))
                {
                    throw new InvalidOperationException($"sendto on c0 failed: errno {errno}");
                }
                Thread.Sleep(1);
            }
            return sent;
        }
        finally
        {
            close(fd);
        }
    }

    private static byte[] Mac(string text) => [.. text.Trim().Split(':').Select(b => Convert.ToByte(b, 16))];

    [DllImport("libc", SetLastError = true)]
    private static extern int socket(int domain, int type, int protocol);

    [DllImport("libc", SetLastError = true)]
    private static extern nint sendto(int fd, byte[] buffer, nint length, int flags, byte[] address, int addressLength);

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);
}
