using System.Net;
using Sluice.Datapath.Neighbours;
using Sluice.Testing;

namespace Sluice.Tests.Datapath;

/// <summary>
/// Backends' next hops kept resolved through kernel-managed neighbour entries, in a pair of
/// namespaces: the keeper's (the appliance) and a host on its link that answers ARP.
/// </summary>
public sealed class NextHopKeeperTests : IDisposable
{
    private static readonly IPAddress Host = IPAddress.Parse("198.18.250.2");
    private static readonly IPAddress Nobody = IPAddress.Parse("198.18.250.9");
    private static readonly IPAddress BehindHost = IPAddress.Parse("198.18.251.7");

    private readonly TestNamespace? appliance;
    private readonly TestNamespace? host;
    private readonly NamespaceThread? thread;

    public NextHopKeeperTests()
    {
        if (Privileges.SkipReason is not null)
        {
            return;
        }
        appliance = new TestNamespace("nh-lb");
        host = new TestNamespace("nh-host");
        Command.Run("ip", "-n", appliance.Name, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", host.Name);
        appliance.IpBatch(["addr add 198.18.250.1/24 dev va", "link set va up", "route add 198.18.251.0/24 via 198.18.250.2"]);
        host.IpBatch(["addr add 198.18.250.2/24 dev vb", "link set vb up"]);
        thread = new NamespaceThread(appliance.Name);
    }

    public void Dispose()
    {
        thread?.Dispose();
        appliance?.Dispose();
        host?.Dispose();
    }

    [RootFact]
    public void RoutesAreLookedUpAsTheKernelWouldForward()
    {
        thread!.Run(() =>
        {
            using var netlink = new RouteNetlink();
            var direct = netlink.LookupRoute(Host);
            Assert.Equal((Host, false), (direct.NextHop, direct.ViaGateway));
            var viaGateway = netlink.LookupRoute(BehindHost);
            Assert.Equal((Host, true), (viaGateway.NextHop, viaGateway.ViaGateway));
            Assert.Equal(direct.Ifindex, viaGateway.Ifindex);
            Assert.Contains("local", Assert.Throws<NoRouteException>(() => netlink.LookupRoute(IPAddress.Parse("198.18.250.1"))).Message);
            Assert.Contains("no route", Assert.Throws<NoRouteException>(() => netlink.LookupRoute(IPAddress.Parse("198.18.252.1"))).Message);
        });
    }

    [RootFact]
    public void ANewBackendsNextHopIsResolvedBeforePrepareReturnsAndKeptManaged()
    {
        var status = thread!.Run(() =>
        {
            using var keeper = new NextHopKeeper();
            keeper.Prepare([BehindHost], TimeSpan.FromSeconds(3));
            return keeper.StatusOf(BehindHost);
        });
        Assert.NotNull(status);
        Assert.True(status.Resolved, status.Problem);
        Assert.Equal(("va", Host), (status.Interface, status.NextHop));
        var entry = appliance!.Exec("ip", "-d", "neigh", "show", "198.18.250.2", "dev", "va");
        Assert.Contains("managed", entry);
        Assert.Contains("proto 181", entry); // NextHopKeeper.Protocol, 0xb5
    }

    [RootFact]
    public void AnUnresolvableNextHopIsReportedNotHidden()
    {
        var status = thread!.Run(() =>
        {
            using var keeper = new NextHopKeeper();
            keeper.Prepare([Nobody], TimeSpan.FromMilliseconds(300));
            return keeper.StatusOf(Nobody);
        });
        Assert.NotNull(status);
        Assert.False(status.Resolved);
        Assert.Contains("198.18.250.9", status.Problem);
        Assert.Contains("not resolved", status.Problem);
        var missing = thread.Run(() =>
        {
            using var keeper = new NextHopKeeper();
            keeper.Prepare([IPAddress.Parse("198.18.252.1")], TimeSpan.FromMilliseconds(100));
            return keeper.StatusOf(IPAddress.Parse("198.18.252.1"));
        });
        Assert.Equal("no route", missing!.State);
        Assert.False(missing.Resolved);
    }

    [RootFact]
    public void EntriesNoBackendNeedsGoAndOthersEntriesStay()
    {
        appliance!.Exec("ip", "neigh", "add", "198.18.250.77", "lladdr", "02:00:00:00:00:77", "dev", "va", "nud", "permanent");
        thread!.Run(() =>
        {
            using var keeper = new NextHopKeeper(preparedGrace: TimeSpan.Zero);
            keeper.Prepare([Host], TimeSpan.FromSeconds(3));
            Assert.Contains("managed", appliance.Exec("ip", "-d", "neigh", "show", "198.18.250.2", "dev", "va"));
            Assert.Empty(keeper.Refresh([]));
            Assert.Null(keeper.StatusOf(Host));
        });
        Assert.DoesNotContain("managed", appliance.Exec("ip", "-d", "neigh", "show", "198.18.250.2", "dev", "va"));
        Assert.Contains("PERMANENT", appliance.Exec("ip", "neigh", "show", "198.18.250.77", "dev", "va"));

        // A restarted daemon removes what an earlier one left: the tag says whose it is.
        thread.Run(() =>
        {
            using (var earlier = new NextHopKeeper())
            {
                earlier.Prepare([Host], TimeSpan.FromSeconds(3));
            }
            using var next = new NextHopKeeper(preparedGrace: TimeSpan.Zero);
            next.Refresh([]);
        });
        Assert.DoesNotContain("managed", appliance.Exec("ip", "-d", "neigh", "show", "198.18.250.2", "dev", "va"));
    }

    [RootFact]
    public void ABackendPreparedButNotYetPublishedKeepsItsEntry()
    {
        // The control plane prepares, programs, then publishes its new state; a refresh with the
        // old state in between must not take the new backend's entry away.
        thread!.Run(() =>
        {
            using var keeper = new NextHopKeeper();
            keeper.Prepare([Host], TimeSpan.FromSeconds(3));
            Assert.True(keeper.Refresh([]).ContainsKey(Host));
        });
        Assert.Contains("managed", appliance!.Exec("ip", "-d", "neigh", "show", "198.18.250.2", "dev", "va"));
    }

    [RootFact]
    public void AStaticEntryOfSomeoneElseIsNeitherReplacedNorRemoved()
    {
        appliance!.Exec("ip", "neigh", "replace", "198.18.250.2", "lladdr", "02:00:00:00:00:02", "dev", "va", "nud", "permanent");
        var status = thread!.Run(() =>
        {
            using var keeper = new NextHopKeeper(preparedGrace: TimeSpan.Zero);
            keeper.Prepare([Host], TimeSpan.FromSeconds(1));
            var seen = keeper.StatusOf(Host);
            keeper.Refresh([]);
            return seen;
        });
        Assert.True(status!.Resolved);
        var entry = appliance.Exec("ip", "-d", "neigh", "show", "198.18.250.2", "dev", "va");
        Assert.Contains("PERMANENT", entry);
        Assert.DoesNotContain("managed", entry);
    }

    [RootFact]
    public void AFlushedEntryIsSetAgainAtTheNextRefresh()
    {
        thread!.Run(() =>
        {
            using var keeper = new NextHopKeeper();
            keeper.Prepare([Host], TimeSpan.FromSeconds(3));
            appliance!.Exec("ip", "neigh", "flush", "dev", "va");
            Assert.DoesNotContain("managed", appliance.Exec("ip", "-d", "neigh", "show", "198.18.250.2", "dev", "va"));
            keeper.Refresh([Host]);
            Assert.Contains("managed", appliance.Exec("ip", "-d", "neigh", "show", "198.18.250.2", "dev", "va"));
        });
    }
}
