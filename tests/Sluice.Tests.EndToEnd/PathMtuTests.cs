using System.Net;
using System.Net.Sockets;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Loading;
using Sluice.Testing;

namespace Sluice.Tests.EndToEnd;

/// <summary>
/// Path MTU discovery through the VIP: the appliance's link to the backend has a smaller MTU
/// (1400) than the client's, and the backend advertises an MSS its link cannot carry (as one
/// behind a smaller hop would), so the client's full-size segments do not fit the appliance's
/// egress. Dropping them silently black-holes the upload; "fragmentation needed" from the VIP
/// makes the client send smaller ones.
/// </summary>
public sealed class PathMtuTests
{
    private static readonly IPEndPoint Vip = new(IPAddress.Parse("198.18.100.40"), 9000);

    [RootTheory]
    [InlineData("fullnat")]
    [InlineData("dnat")]
    public async Task ALargeUploadThroughASmallerBackendLinkArrivesWhole(string mode)
    {
        using var appliance = new Appliance($"pmtu-{mode}");
        appliance.Network.Balancer.Exec("ip", "link", "set", "lbb1", "mtu", "1400");
        var backend = appliance.Network.BackendNamespaces[0];
        backend.Exec("ip", "link", "set", "b0", "mtu", "1400");
        backend.Exec("ip", "route", "replace", "198.18.200.0/24", "via", "198.18.11.1", "advmss", "1460");
        backend.Exec("ip", "route", "replace", "198.19.10.0/24", "via", "198.18.11.1", "advmss", "1460");
        await appliance.Put("/api/v1/services/pmtu", $$"""
            {"vip": "198.18.100.40", "port": 9000, "mode": "{{mode}}", "backends": [{"address": "198.18.11.2", "port": 9000}]}
            """);

        using var socket = appliance.Network.ClientSocket(SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await socket.ConnectAsync(Vip, timeout.Token);
        var one = new byte[1];
        while (await socket.ReceiveAsync(one, timeout.Token) == 1 && one[0] != '\n')
        {
        }
        var payload = Enumerable.Range(0, 256 * 1024).Select(i => (byte)(i * 31 + 7)).ToArray();
        var sending = socket.SendAsync(payload, timeout.Token).AsTask();
        var echoed = new byte[payload.Length];
        var read = 0;
        try
        {
            while (read < echoed.Length)
            {
                var n = await socket.ReceiveAsync(echoed.AsMemory(read), timeout.Token);
                Assert.True(n > 0, "the connection closed");
                read += n;
            }
        }
        catch (OperationCanceledException)
        {
            using var m = PinnedMaps.Open(appliance.PinPath);
            var counters = string.Join(" ", Enum.GetValues<DatapathCounter>().Select(c => $"{c}={m.Counters.Read((uint)c).Aggregate(0UL, (a, b) => a + b)}"));
            var drops = string.Join(" ", Enum.GetValues<DropReason>().Select(c => $"{c}={m.Drops.Read((uint)c).Aggregate(0UL, (a, b) => a + b)}"));
            Assert.Fail($"stalled after {read} bytes echoed; {counters}; {drops}; client route: {appliance.Network.Client.Exec("ip", "route", "get", "198.18.100.40")}");
        }
        await sending;
        Assert.Equal(payload, echoed);

        using var maps = PinnedMaps.Open(appliance.PinPath);
        Assert.True(maps.Counters.Read((uint)DatapathCounter.FragNeededSent).Aggregate(0UL, (a, b) => a + b) > 0,
            "the client's full-size segments were answered with fragmentation needed");
        Assert.Contains("mtu 1400", appliance.Network.Client.Exec("ip", "route", "get", "198.18.100.40"));
        appliance.Network.AssertNoChecksumErrors();
    }
}
