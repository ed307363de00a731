using Sluice.Datapath.Abi;
using Sluice.Datapath.Neighbours;
using Sluice.Testing;

namespace Sluice.Tests.Datapath;

/// <summary>
/// The loader's VLAN map against real links. This kernel has no 802.1Q, so no real VLAN
/// sub-interface can exist here: what is checked is that the link dump is read (names, a
/// macvlan's parent is not taken for a VLAN) and that entries for sub-interfaces that do not
/// exist are removed. Which sub-interfaces become which entries is in the unit tier.
/// </summary>
public sealed class VlanSyncTests
{
    [RootFact]
    public void LinksAreReadAndEntriesForMissingSubInterfacesAreRemoved()
    {
        using var env = new DatapathEnvironment();
        Command.Run("ip", "-netns", env.NamespaceName, "link", "add", "mv0", "link", "be0", "type", "macvlan");
        env.Thread.Run(() =>
        {
            List<Link> links;
            using (var netlink = new RouteNetlink())
            {
                links = netlink.Links();
            }
            Assert.Contains(links, l => l.Name == "cl0" && l.Ifindex == env.Ifindex["cl0"]);
            var macvlan = Assert.Single(links, l => l.Name == "mv0");
            Assert.Null(macvlan.VlanId);
            Assert.Equal(0u, macvlan.Parent);

            // The environment lists stand-in sub-interfaces (plain veths): not VLANs, so a sync removes them.
            Assert.NotEmpty(env.Datapath.Vlans.ReadAll());
            Assert.Empty(env.Datapath.SyncVlans());
            Assert.Empty(env.Datapath.Vlans.ReadAll());
        });
    }
}
