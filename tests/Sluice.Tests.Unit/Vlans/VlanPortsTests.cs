using Sluice.Datapath.Abi;
using Sluice.Datapath.Neighbours;
using Sluice.Datapath.Vlans;

namespace Sluice.Tests.Unit.Vlans;

/// <summary>Which VLAN sub-interfaces the datapath is told about, and how (both directions).</summary>
public sealed class VlanPortsTests
{
    private static readonly Link[] Links =
    [
        new(2, "eth0", 0, null),
        new(3, "eth1", 0, null),
        new(10, "eth0.100", 2, 100),
        new(11, "eth0.200", 2, 200),
        new(12, "eth1.300", 3, 300),       // parent not attached
        new(13, "eth0.prio", 2, 0),        // id 0 is priority tagging, not a VLAN
        new(14, "macvlan0", 0, null),      // not a VLAN (Links() reports no id)
    ];

    [Fact]
    public void OnlyVlansOfAttachedInterfacesAreListed()
    {
        var listed = VlanPorts.SubInterfacesOf(Links, attached: [2]);
        Assert.Equal(["eth0.100", "eth0.200"], listed.Select(v => v.Name));
        Assert.All(listed, v => Assert.Equal("eth0", v.ParentName));
    }

    [Fact]
    public void EachSubInterfaceIsListedBothWays()
    {
        var entries = VlanPorts.EntriesFor(VlanPorts.SubInterfacesOf(Links, attached: [2, 3]));
        Assert.Equal(6, entries.Count);
        Assert.Equal(new VlanPort(10, 0), entries[new VlanPort(2, 100)]);
        Assert.Equal(new VlanPort(2, 100), entries[new VlanPort(10, 0)]);
        Assert.Equal(new VlanPort(12, 0), entries[new VlanPort(3, 300)]);
        Assert.Equal(new VlanPort(3, 300), entries[new VlanPort(12, 0)]);
    }

    [Fact]
    public void NothingAttachedListsNothing() =>
        Assert.Empty(VlanPorts.EntriesFor(VlanPorts.SubInterfacesOf(Links, attached: [])));
}
