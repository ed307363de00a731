using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Sluice.Datapath.Connections;
using Sluice.Datapath.Loading;
using Sluice.Testing;
using Xunit.Abstractions;

namespace Sluice.Tests.EndToEnd;

/// <summary>
/// Churn through fullnat with 256 SNAT ports per backend, for ten minutes
/// (SLUICE_SOAK_SECONDS to change it while developing): TCP connections that close
/// normally, half-close or reset, and UDP request/response from ever new ports, all at once
/// against a real sluiced whose sweeper frees the ports. Every byte a client gets back must
/// be its own; at the end, once the timeouts have passed, every connection and port is free.
/// </summary>
public sealed class ChurnSoakTests(ITestOutputHelper output)
{
    private static readonly IPEndPoint TcpVip = new(IPAddress.Parse("198.18.100.31"), 9000);
    private static readonly IPEndPoint UdpVip = new(IPAddress.Parse("198.18.100.31"), 5353);

    [RootFact]
    public async Task ChurnDeliversEveryByteToItsOwnClientAndEveryPortIsFreeAfterwards()
    {
        var duration = TimeSpan.FromSeconds(int.Parse(Environment.GetEnvironmentVariable("SLUICE_SOAK_SECONDS") ?? "600"));
        using var appliance = new Appliance("soak", """
              snatPortMin: 40000
              snatPortMax: 40255
              connections:
                tcpHandshakeSeconds: 5
                tcpHalfClosedSeconds: 10
                tcpClosedSeconds: 1
                udpSeconds: 3
                sweepIntervalMs: 500
            """);
        var backends = string.Join(", ", Enumerable.Range(1, 3).Select(n => $$"""{"address": "{{NetworkTopology.BackendAddress(n)}}", "port": PORT}"""));
        await appliance.Put("/api/v1/services/tcp", $$"""{"vip": "{{TcpVip.Address}}", "port": 9000, "backends": [{{backends.Replace("PORT", "9000")}}]}""");
        await appliance.Put("/api/v1/services/udp", $$"""{"vip": "{{UdpVip.Address}}", "port": 5353, "protocol": "udp", "backends": [{{backends.Replace("PORT", "5353")}}]}""");

        var stats = new ChurnStats();
        using var stop = new CancellationTokenSource(duration);
        var clock = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, 12).Select(id => Task.Run(() => TcpWorker(appliance, id, stats, stop.Token)))
            .Concat(Enumerable.Range(0, 6).Select(id => Task.Run(() => UdpWorker(appliance, id, stats, stop.Token))))
            .ToList();
        await Task.WhenAll(workers);
        output.WriteLine($"{clock.Elapsed.TotalSeconds:F0} s: {stats}");

        Assert.Equal(0, stats.Misdelivered);
        Assert.True(stats.TcpVerified >= 100 && stats.UdpVerified >= 100, $"too little traffic to prove anything: {stats}");
        Assert.True(stats.HalfClosed > 0 && stats.Reset > 0, $"every kind of TCP ending should have happened: {stats}");

        // Every connection expires within its timeout (half-closed 10 s at most) plus sweeps,
        // and every SNAT port is free again.
        using var maps = PinnedMaps.Open(appliance.PinPath);
        await Poll.Until(() =>
        {
            var left = ConnectionTable.Read(maps.Flows, maps.Nat);
            return left.Connections.Count == 0 && left.OrphanReverseHalves.Count == 0;
        }, "every connection and SNAT port free after the timeouts", TimeSpan.FromSeconds(30));
        appliance.Network.AssertNoChecksumErrors();
    }

    private static async Task TcpWorker(Appliance appliance, int id, ChurnStats stats, CancellationToken stop)
    {
        var random = new Random(id);
        for (var round = 0; !stop.IsCancellationRequested; round++)
        {
            using var socket = appliance.Network.ClientSocket(SocketType.Stream, ProtocolType.Tcp);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await socket.ConnectAsync(TcpVip, timeout.Token);
                await ReadBanner(socket, timeout.Token);
                // This client's own bytes: its id and round in every 16-byte block.
                var payload = Payload(id, round, random.Next(1, 64) * 1024);
                var ending = round % 3;
                var toSend = ending == 2 ? payload.AsMemory(0, payload.Length / 2) : payload;
                await socket.SendAsync(toSend, timeout.Token);
                if (ending == 1)
                {
                    socket.Shutdown(SocketShutdown.Send); // half-close: the echo keeps coming
                }
                var echoed = await ReadExactly(socket, toSend.Length, timeout.Token);
                if (!echoed.AsSpan().SequenceEqual(toSend.Span))
                {
                    stats.Misdelivery($"tcp client {id} round {round} got bytes that are not its own");
                    return;
                }
                switch (ending)
                {
                    case 1:
                        stats.Count(ref stats.HalfClosed);
                        break;
                    case 2:
                        socket.LingerState = new LingerOption(true, 0); // close with a RST
                        stats.Count(ref stats.Reset);
                        break;
                }
                stats.Count(ref stats.TcpVerified);
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException or IOException)
            {
                stats.Count(ref stats.TcpFailed); // refused or timed out (ports exhausted for a moment): retried
            }
        }
    }

    private static async Task UdpWorker(Appliance appliance, int id, ChurnStats stats, CancellationToken stop)
    {
        var buffer = new byte[2048];
        for (var round = 0; !stop.IsCancellationRequested; round++)
        {
            using var socket = appliance.Network.ClientSocket(SocketType.Dgram, ProtocolType.Udp); // a new port each time
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            var token = $"udp client {id} round {round} {Guid.NewGuid():N}";
            try
            {
                await socket.SendToAsync(Encoding.ASCII.GetBytes(token), UdpVip, timeout.Token);
                var received = await socket.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0), timeout.Token);
                var reply = Encoding.ASCII.GetString(buffer, 0, received.ReceivedBytes);
                if (!reply.EndsWith(":" + token, StringComparison.Ordinal) || !received.RemoteEndPoint.Equals(UdpVip))
                {
                    stats.Misdelivery($"udp client {id} round {round} got \"{reply}\" from {received.RemoteEndPoint}");
                    return;
                }
                stats.Count(ref stats.UdpVerified);
            }
            catch (OperationCanceledException)
            {
                stats.Count(ref stats.UdpLost);
            }
        }
    }

    private static byte[] Payload(int id, int round, int length)
    {
        var payload = new byte[length];
        for (var block = 0; block < length / 16; block++)
        {
            BitConverter.TryWriteBytes(payload.AsSpan(block * 16), id);
            BitConverter.TryWriteBytes(payload.AsSpan(block * 16 + 4), round);
            BitConverter.TryWriteBytes(payload.AsSpan(block * 16 + 8), (long)block);
        }
        return payload;
    }

    private static async Task ReadBanner(Socket socket, CancellationToken token)
    {
        var one = new byte[1];
        while (await socket.ReceiveAsync(one, token) == 1 && one[0] != '\n')
        {
        }
    }

    private static async Task<byte[]> ReadExactly(Socket socket, int length, CancellationToken token)
    {
        var buffer = new byte[length];
        var read = 0;
        while (read < length)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), token);
            if (n == 0)
            {
                throw new IOException($"the connection closed after {read} of {length} echoed bytes");
            }
            read += n;
        }
        return buffer;
    }

    private sealed class ChurnStats
    {
        public int TcpVerified, TcpFailed, HalfClosed, Reset, UdpVerified, UdpLost, Misdelivered;
        private string? firstMisdelivery;

        public void Count(ref int counter) => Interlocked.Increment(ref counter);

        public void Misdelivery(string what)
        {
            Interlocked.CompareExchange(ref firstMisdelivery, what, null);
            Interlocked.Increment(ref Misdelivered);
        }

        public override string ToString() =>
            $"tcp {TcpVerified} verified ({HalfClosed} half-closed, {Reset} reset), {TcpFailed} failed; udp {UdpVerified} verified, {UdpLost} lost; " +
            $"misdelivered {Misdelivered}{(firstMisdelivery is null ? "" : $" (first: {firstMisdelivery})")}";
    }
}
