using System.Net;
using System.Net.Sockets;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Loading;
using Sluice.Testing;

namespace Sluice.Tests.EndToEnd;

/// <summary>
/// A common set-up that black-holed a VIP: the SNAT address is the appliance's own address on the
/// backend link, the service comes through the API with no health check, nothing has talked to
/// the backend yet. The first packet found no neighbour, went to the kernel, which dropped it as a
/// martian (its source is a local address) and never resolved anything.
/// </summary>
public sealed class NextHopTests
{
    private static readonly IPEndPoint Vip = new(IPAddress.Parse("198.18.100.30"), 9000);

    [RootFact]
    public async Task WithTheSnatAddressOnTheBackendLinkTheFirstConnectionToANewServiceSucceeds()
    {
        using var appliance = new Appliance("own-snat", snatAddress: "198.18.11.1");
        await appliance.Put("/api/v1/services/first", """
            {"vip": "198.18.100.30", "port": 9000, "mode": "fullnat", "backends": [{"address": "198.18.11.2", "port": 9000}]}
            """);

        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        using (var connection = await StreamingConnection.Open(appliance.Network.ClientSocket(SocketType.Stream, ProtocolType.Tcp), Vip, timeout.Token))
        {
            Assert.Equal("backend-1", connection.Backend);
        }
        // Its very first SYN was forwarded by the datapath, not handed to the kernel for want of a neighbour.
        using var maps = PinnedMaps.Open(appliance.PinPath);
        Assert.Equal(0UL, maps.Counters.Read((uint)DatapathCounter.PassNoNeighbour).Aggregate(0UL, (a, b) => a + b));

        var backend = (await appliance.Backend("first", NetworkTopology.BackendAddress(1)))!;
        Assert.Equal("lbb1", backend["nextHop"]!["interface"]!.GetValue<string>());
        Assert.Equal("198.18.11.2", backend["nextHop"]!["address"]!.GetValue<string>());
        Assert.True(backend["nextHop"]!["resolved"]!.GetValue<bool>());
    }

    [RootFact]
    public async Task ABackendWhoseNextHopCannotBeResolvedShowsInStatusEventsAndMetrics()
    {
        using var appliance = new Appliance("no-neighbour");
        await appliance.Put("/api/v1/services/ghost", """
            {"vip": "198.18.100.31", "port": 9000, "backends": [{"address": "198.18.11.2", "port": 9000}, {"address": "198.18.11.99", "port": 9000}]}
            """);
        await Poll.Until(async () => (await appliance.Backend("ghost", IPAddress.Parse("198.18.11.99")))!["nextHop"]!["resolved"]!.GetValue<bool>() == false,
            "the unresolvable next hop reported", TimeSpan.FromSeconds(10));
        var ghost = (await appliance.Backend("ghost", IPAddress.Parse("198.18.11.99")))!;
        Assert.Contains("198.18.11.99", ghost["nextHop"]!["problem"]!.GetValue<string>());
        Assert.True((await appliance.Backend("ghost", NetworkTopology.BackendAddress(1)))!["nextHop"]!["resolved"]!.GetValue<bool>());

        var status = await appliance.Get("/api/v1/status");
        Assert.Equal(1, status["nextHops"]!["unresolved"]!.GetValue<int>());
        await Poll.Until(async () => (await appliance.Get("/api/v1/events?kind=next-hop"))["events"]!.AsArray()
            .Any(e => e!["message"]!.GetValue<string>().Contains("198.18.11.99", StringComparison.Ordinal)), "an event names it", TimeSpan.FromSeconds(10));
        using var metrics = appliance.Daemon.MetricsClient();
        Assert.Contains("sluice_next_hops_unresolved 1", await metrics.GetStringAsync("/metrics"));
    }
}
