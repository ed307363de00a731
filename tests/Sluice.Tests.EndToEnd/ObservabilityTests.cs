using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Sluice.Testing;

namespace Sluice.Tests.EndToEnd;

/// <summary>Drain with a visible live-flow count, exact Prometheus counters, the flows API.</summary>
public sealed class ObservabilityTests
{
    private static readonly IPEndPoint StreamVip = new(IPAddress.Parse("198.18.100.22"), 9000);

    private const string StreamService = """
        {"vip": "198.18.100.22", "port": 9000, "backends": [
          {"address": "198.18.11.2", "port": 9000}, {"address": "198.18.12.2", "port": 9000}, {"address": "198.18.13.2", "port": 9000}]}
        """;

    [RootFact]
    public async Task ADrainingBackendKeepsItsConnectionsShowsTheirCountAndIsRemovedAtZero()
    {
        using var appliance = new Appliance("drain");
        await appliance.Put("/api/v1/services/stream", StreamService);
        var draining = NetworkTopology.BackendAddress(1);
        var connections = new List<StreamingConnection>();
        try
        {
            for (var i = 0; i < 30 && connections.Count(c => c.Backend == "backend-1") < 4; i++)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                connections.Add(await StreamingConnection.Open(appliance.Network.ClientSocket(SocketType.Stream, ProtocolType.Tcp), StreamVip, timeout.Token));
            }
            var toDrained = connections.Where(c => c.Backend == "backend-1").ToList();
            Assert.True(toDrained.Count >= 4, "30 connections should put at least 4 on backend-1");
            Assert.Equal(toDrained.Count, (await appliance.Backend("stream", draining))!["liveFlows"]!.GetValue<int>());

            await appliance.Put("/api/v1/services/stream/backends/198.18.11.2:9000", """{"state": "draining"}""", HttpStatusCode.OK);
            for (var i = 0; i < 30; i++)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                using var fresh = await StreamingConnection.Open(appliance.Network.ClientSocket(SocketType.Stream, ProtocolType.Tcp), StreamVip, timeout.Token);
                Assert.NotEqual("backend-1", fresh.Backend);
            }

            // Existing connections still work; the count falls as they close.
            using (var stop = new CancellationTokenSource(TimeSpan.FromMilliseconds(300)))
            {
                await Task.WhenAll(toDrained.Select((c, id) => c.Stream(id, stop.Token)));
            }
            Assert.All(toDrained, c => Assert.True(c.Failure is null && c.Echoed > 0 && c.Echoed == c.Sent, $"{c.Failure}"));
            for (var open = toDrained.Count - 1; open >= 1; open--)
            {
                toDrained[open].Dispose();
                var expected = open;
                await Poll.Until(async () => (await appliance.Backend("stream", draining))?["liveFlows"]!.GetValue<int>() == expected,
                    $"live flows of the draining backend fall to {expected}");
                Assert.Equal("draining", (await appliance.Backend("stream", draining))!["state"]!.GetValue<string>());
            }

            toDrained[0].Dispose();
            await Poll.Until(async () => await appliance.Backend("stream", draining) is null, "the drained backend is removed at zero flows");
            var events = (await appliance.Get("/api/v1/events?kind=drain"))["events"]!.AsArray();
            Assert.Equal("198.18.11.2:9000 of stream drained and removed: its last flow ended", Assert.Single(events)!["message"]!.GetValue<string>());
        }
        finally
        {
            connections.ForEach(c => c.Dispose());
        }
    }

    [RootFact]
    public async Task ADrainWaitsForAHalfClosedConnectionThatStillStreams()
    {
        // The client has sent its FIN; the backend is still sending it 4 MiB: the connection
        // is live, the backend stays draining until the last byte and the backend's FIN.
        using var appliance = new Appliance("halfclose");
        await appliance.Put("/api/v1/services/stream", StreamService);
        var draining = NetworkTopology.BackendAddress(1);
        var sockets = new List<Socket>();
        try
        {
            Socket? socket = null;
            for (var i = 0; i < 30 && socket is null; i++)
            {
                var candidate = appliance.Network.ClientSocket(SocketType.Stream, ProtocolType.Tcp);
                sockets.Add(candidate);
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await candidate.ConnectAsync(StreamVip, timeout.Token);
                var banner = new byte[10];
                var read = await candidate.ReceiveAsync(banner, timeout.Token);
                if (Encoding.ASCII.GetString(banner, 0, read).StartsWith("backend-1", StringComparison.Ordinal))
                {
                    socket = candidate;
                }
            }
            Assert.NotNull(socket);
            await appliance.Put("/api/v1/services/stream/backends/198.18.11.2:9000", """{"state": "draining"}""", HttpStatusCode.OK);

            // Send 4 MiB and half-close, reading the echo slowly so the backend keeps sending after our FIN.
            var blob = new byte[4 << 20];
            new Random(3).NextBytes(blob);
            var echoed = new MemoryStream();
            var sending = Task.Run(async () =>
            {
                await socket.SendAsync(blob);
                socket.Shutdown(SocketShutdown.Send);
            });
            var buffer = new byte[64 * 1024];
            var checkedWhileHalfClosed = false;
            while (true)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                var n = await socket.ReceiveAsync(buffer, timeout.Token);
                if (n == 0)
                {
                    break;
                }
                echoed.Write(buffer, 0, n);
                if (sending.IsCompleted && !checkedWhileHalfClosed && echoed.Length < blob.Length - (1 << 20))
                {
                    // Our FIN is out, a megabyte and more still to come from the backend.
                    var backend = await appliance.Backend("stream", draining);
                    Assert.NotNull(backend);
                    Assert.Equal("draining", backend["state"]!.GetValue<string>());
                    Assert.Equal(1, backend["liveFlows"]!.GetValue<int>());
                    checkedWhileHalfClosed = true;
                }
                await Task.Delay(20);
            }
            await sending;
            Assert.True(checkedWhileHalfClosed, "the half-closed connection was never seen streaming (reading too fast?)");
            Assert.Equal(blob, echoed.ToArray()); // every byte, in order, after our FIN too
            await Poll.Until(async () => await appliance.Backend("stream", draining) is null, "the drained backend is removed once the connection has closed");
        }
        finally
        {
            sockets.ForEach(s => s.Dispose());
        }
    }

    [RootFact]
    public async Task ExactlyOneThousandUdpPacketsShowInTheCountersAndTheExpositionPassesPromtool()
    {
        using var appliance = new Appliance("metrics");
        await appliance.Put("/api/v1/services/count", """
            {"vip": "198.18.100.23", "port": 5353, "protocol": "udp", "mode": "dnat", "backends": [
              {"address": "198.18.11.2", "port": 5353}, {"address": "198.18.12.2", "port": 5353}, {"address": "198.18.13.2", "port": 5353}]}
            """);
        var vip = new IPEndPoint(IPAddress.Parse("198.18.100.23"), 5353);
        var buffer = new byte[512];
        for (var i = 0; i < 1000; i++)
        {
            // Twenty client ports, so the packets spread over the backends; each answered before the next.
            using var socket = appliance.Network.ClientSocket(SocketType.Dgram, ProtocolType.Udp);
            // The port was just closed by an earlier iteration: rebinding it is the point.
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(new IPEndPoint(NetworkTopology.ClientAddress, 41000 + (i % 20)));
            await socket.ConnectAsync(vip);
            await socket.SendAsync(Encoding.ASCII.GetBytes($"datagram {i}"));
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await socket.ReceiveAsync(buffer, timeout.Token);
        }

        using var metrics = appliance.Daemon.MetricsClient();
        var exposition = await metrics.GetStringAsync("/metrics");
        Assert.Equal(1000, Value(exposition, "sluice_service_packets_total{service=\"count\"}"));
        Assert.Equal(1000, Value(exposition, "sluice_service_reply_packets_total{service=\"count\"}"));
        Assert.Equal(20, Value(exposition, "sluice_service_new_flows_total{service=\"count\"}"));
        var perBackend = Enumerable.Range(1, 3).Select(n => Value(exposition, $"sluice_backend_packets_total{{service=\"count\",backend=\"198.18.1{n}.2:5353\"}}")).ToList();
        Assert.Equal(1000, perBackend.Sum());
        Assert.True(perBackend.Count(p => p > 0) >= 2, $"20 client ports should reach at least two backends: {string.Join(",", perBackend)}");
        Assert.Equal(1, Value(exposition, "sluice_backend_up{service=\"count\",backend=\"198.18.11.2:5353\"}"));
        Assert.Equal(65536, Value(exposition, "sluice_flow_table_capacity"));
        Assert.Equal(20, Value(exposition, "sluice_flow_table_entries"));
        Assert.Contains("sluice_reconcile_duration_seconds_bucket", exposition);
        Assert.Contains("sluice_api_requests_total{route=\"/api/v1/services/{name}\",method=\"PUT\",code=\"201\"} 1", exposition);

        var file = Path.Combine(appliance.Directory, "metrics.txt");
        await File.WriteAllTextAsync(file, exposition);
        var (exit, output) = Command.TryRun("sh", "-c", $"promtool check metrics < {file}");
        Assert.True(exit == 0 && output.Trim().Length == 0, $"promtool check metrics exited {exit}: {output}");

        // Metrics are on their own listener only: the API port does not serve them.
        using var api = appliance.Daemon.Client(authenticated: false);
        Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync("/metrics")).StatusCode);
    }

    [RootFact]
    public async Task AnOpenConnectionIsListedWithItsClientBackendAndSnatPort()
    {
        using var appliance = new Appliance("flows");
        await appliance.Put("/api/v1/services/stream", StreamService);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var socket = appliance.Network.ClientSocket(SocketType.Stream, ProtocolType.Tcp);
        using var connection = await StreamingConnection.Open(socket, StreamVip, timeout.Token);
        var client = (IPEndPoint)socket.LocalEndPoint!;
        var server = appliance.Network.Backends.Single(b => b.Name == connection.Backend);

        var list = await appliance.Get("/api/v1/flows?service=stream");
        var flow = Assert.Single(list["flows"]!.AsArray())!;
        Assert.Equal(client.ToString(), flow["client"]!.GetValue<string>());
        Assert.Equal("198.18.100.22:9000", flow["vip"]!.GetValue<string>());
        Assert.Equal($"{server.Address}:9000", flow["backend"]!.GetValue<string>());
        Assert.Equal("established", flow["state"]!.GetValue<string>());
        // The backend saw the connection come from exactly the SNAT address and port listed.
        var snat = new IPEndPoint(IPAddress.Parse(flow["snatAddress"]!.GetValue<string>()), flow["snatPort"]!.GetValue<int>());
        Assert.Equal(NetworkTopology.SnatAddress, snat.Address);
        Assert.Contains(snat, server.StreamPeers);

        Assert.Empty((await appliance.Get($"/api/v1/flows?service=stream&backend=198.18.1{(server.Name == "backend-1" ? 2 : 1)}.2:9000"))["flows"]!.AsArray());
        var (exit, output) = appliance.Daemon.Ctl("flows", "--service", "stream");
        Assert.True(exit == 0, output);
        Assert.Contains(client.ToString(), output);
        Assert.Contains($"{snat.Address}:{snat.Port}", output);
        (exit, output) = appliance.Daemon.Ctl("events");
        Assert.True(exit == 0, output);
        Assert.Contains("service stream created", output);
    }

    /// <summary>The value of one exact series line of a Prometheus exposition.</summary>
    private static double Value(string exposition, string series)
    {
        var line = exposition.Split('\n').FirstOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal))
            ?? throw new Xunit.Sdk.XunitException($"no series {series} in:\n{exposition}");
        return double.Parse(line[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }
}
