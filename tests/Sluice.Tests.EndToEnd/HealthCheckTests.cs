using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Sluice.Testing;

namespace Sluice.Tests.EndToEnd;

/// <summary>
/// Active health checks against real servers: a dead backend leaves the Maglev table
/// within fall × interval + timeout and gets no new connection; back up after rise.
/// </summary>
public sealed class HealthCheckTests
{
    private static readonly IPEndPoint Vip = new(IPAddress.Parse("198.18.100.20"), 9000);
    private const int IntervalMs = 400, TimeoutMs = 200, Rise = 2, Fall = 2;

    [RootFact]
    public async Task ADeadBackendIsMarkedDownAndAvoidedThenUpAgainAfterRise()
    {
        using var appliance = new Appliance("health");
        await appliance.Put("/api/v1/services/checked", $$"""
            {"vip": "198.18.100.20", "port": 9000, "backends": [
              {"address": "198.18.11.2", "port": 9000}, {"address": "198.18.12.2", "port": 9000}, {"address": "198.18.13.2", "port": 9000}],
             "healthCheck": {"type": "tcp", "intervalMs": {{IntervalMs}}, "timeoutMs": {{TimeoutMs}}, "rise": {{Rise}}, "fall": {{Fall}} } }
            """);
        var victim = NetworkTopology.BackendAddress(2);
        Assert.Equal("up", (await appliance.Backend("checked", victim))!["health"]!.GetValue<string>());

        // Stop backend-2's server; it must be down within fall × interval + timeout
        // (plus the poll's own step and process scheduling).
        var stopped = Stopwatch.StartNew();
        appliance.Network.Backends[1].StopListening();
        var bound = TimeSpan.FromMilliseconds(Fall * IntervalMs + TimeoutMs);
        await Poll.Until(async () => (await appliance.Backend("checked", victim))!["health"]!.GetValue<string>() == "down",
            "backend-2 marked down", bound + TimeSpan.FromSeconds(1));
        var detail = (await appliance.Backend("checked", victim))!["healthDetail"]!.GetValue<string>();
        Assert.Contains("refused", detail);

        foreach (var backend in await Connect(appliance, 60))
        {
            Assert.NotEqual("backend-2", backend);
        }

        appliance.Network.Backends[1].ListenAgain();
        await Poll.Until(async () => (await appliance.Backend("checked", victim))!["health"]!.GetValue<string>() == "up",
            "backend-2 up again", TimeSpan.FromMilliseconds(Rise * IntervalMs + TimeoutMs) + TimeSpan.FromSeconds(1));
        Assert.Contains("backend-2", await Connect(appliance, 60));

        var events = (await appliance.Get("/api/v1/events?kind=health"))["events"]!.AsArray().Select(e => e!["message"]!.GetValue<string>()).ToList();
        Assert.Contains(events, e => e.StartsWith("198.18.12.2:9000 of checked is down", StringComparison.Ordinal));
        Assert.Contains("198.18.12.2:9000 of checked is up", events);
        Assert.Contains("backend down: checked 198.18.12.2:9000", appliance.Daemon.Log());
    }

    [RootFact]
    public async Task AnHttpCheckWithTheWrongStatusAndAUdpCheckWithoutReplyMarkDown()
    {
        using var appliance = new Appliance("health-http");
        await appliance.Put("/api/v1/services/web", $$"""
            {"vip": "198.18.100.21", "port": 80, "backends": [
              {"address": "198.18.11.2", "port": 8080}, {"address": "198.18.13.2", "port": 8080}],
             "healthCheck": {"type": "http", "path": "/healthz", "expectStatus": "200", "intervalMs": {{IntervalMs}}, "timeoutMs": {{TimeoutMs}}, "rise": 1, "fall": 2} }
            """);
        await appliance.Put("/api/v1/services/echo", $$"""
            {"vip": "198.18.100.21", "port": 5353, "protocol": "udp", "mode": "dnat", "backends": [
              {"address": "198.18.11.2", "port": 5353}, {"address": "198.18.12.2", "port": 5353}],
             "healthCheck": {"type": "udp", "payload": "are you there", "intervalMs": {{IntervalMs}}, "timeoutMs": {{TimeoutMs}}, "rise": 1, "fall": 2} }
            """);
        var bound = TimeSpan.FromMilliseconds(Fall * IntervalMs + TimeoutMs) + TimeSpan.FromSeconds(1);

        appliance.Network.Backends[2].HttpStatus = 503;
        await Poll.Until(async () => (await appliance.Backend("web", NetworkTopology.BackendAddress(3)))!["health"]!.GetValue<string>() == "down",
            "backend-3 down by its HTTP 503", bound);
        Assert.Equal("HTTP 503, expected 200-200", (await appliance.Backend("web", NetworkTopology.BackendAddress(3)))!["healthDetail"]!.GetValue<string>());
        Assert.Equal("up", (await appliance.Backend("web", NetworkTopology.BackendAddress(1)))!["health"]!.GetValue<string>());

        appliance.Network.Backends[0].UdpSilent = true;
        await Poll.Until(async () => (await appliance.Backend("echo", NetworkTopology.BackendAddress(1)))!["health"]!.GetValue<string>() == "down",
            "backend-1 down: its UDP check gets no reply", bound);
        Assert.Equal($"no answer within {TimeoutMs} ms", (await appliance.Backend("echo", NetworkTopology.BackendAddress(1)))!["healthDetail"]!.GetValue<string>());
        Assert.Equal("up", (await appliance.Backend("echo", NetworkTopology.BackendAddress(2)))!["health"]!.GetValue<string>());

        // Only the healthy one answers through the VIP now.
        var buffer = new byte[512];
        for (var i = 0; i < 20; i++)
        {
            using var fresh = appliance.Network.ClientSocket(SocketType.Dgram, ProtocolType.Udp);
            await fresh.ConnectAsync(new IPEndPoint(IPAddress.Parse("198.18.100.21"), 5353));
            await fresh.SendAsync(Encoding.ASCII.GetBytes($"hello {i}"));
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var read = await fresh.ReceiveAsync(buffer, timeout.Token);
            Assert.StartsWith("backend-2:", Encoding.ASCII.GetString(buffer, 0, read));
        }
    }

    /// <summary>Opens <paramref name="count"/> new connections through the VIP; returns the backend each reached.</summary>
    private static async Task<List<string>> Connect(Appliance appliance, int count)
    {
        var reached = new List<string>();
        for (var i = 0; i < count; i++)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            using var connection = await StreamingConnection.Open(appliance.Network.ClientSocket(SocketType.Stream, ProtocolType.Tcp), Vip, timeout.Token);
            reached.Add(connection.Backend);
        }
        return reached;
    }
}
