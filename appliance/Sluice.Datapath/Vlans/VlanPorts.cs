using Sluice.Datapath.Abi;
using Sluice.Datapath.Maps;
using Sluice.Datapath.Neighbours;

namespace Sluice.Datapath.Vlans;

/// <summary>An 802.1Q VLAN sub-interface the datapath balances for: tagged <c>VlanId</c> on <c>Parent</c>.</summary>
public sealed record VlanSubInterface(string Name, uint Ifindex, string ParentName, uint Parent, ushort VlanId);

/// <summary>
/// Keeps the datapath's VLAN map (sluice_vlans) equal to the 802.1Q sub-interfaces of the attached
/// interfaces. XDP runs on the parent and sees tagged frames: the datapath looks up
/// {parent, id} to ask the FIB as the sub-interface (so routes, forwarding and reply checks are
/// per VLAN), and {sub-interface, 0} to send out of the parent with the tag, since a VLAN device
/// cannot take redirected frames. Frames tagged with an id that is not listed pass to the kernel
/// untouched. Sub-interfaces of interfaces Sluice is not attached to are never listed.
/// </summary>
public sealed class VlanPorts(BpfMap<VlanPort, VlanPort> map)
{
    private readonly Lock gate = new();

    /// <summary>Rewrites the map from the links of the calling thread's namespace; returns what it lists.</summary>
    public IReadOnlyList<VlanSubInterface> Sync(IReadOnlyCollection<uint> attached)
    {
        List<Link> links;
        using (var netlink = new RouteNetlink())
        {
            links = netlink.Links();
        }
        var current = SubInterfacesOf(links, attached);
        var wanted = EntriesFor(current);
        lock (gate)
        {
            foreach (var (key, value) in wanted)
            {
                if (!map.TryLookup(key, out var existing) || existing != value)
                {
                    map.Update(key, value);
                }
            }
            foreach (var (key, _) in map.ReadAll())
            {
                if (!wanted.ContainsKey(key))
                {
                    map.Delete(key);
                }
            }
        }
        return current;
    }

    /// <summary>The 802.1Q sub-interfaces (ids 1-4094) of the attached interfaces, by name.</summary>
    public static IReadOnlyList<VlanSubInterface> SubInterfacesOf(IReadOnlyCollection<Link> links, IReadOnlyCollection<uint> attached)
    {
        var names = links.ToDictionary(l => l.Ifindex, l => l.Name);
        return links
            .Where(l => l.VlanId is >= 1 and <= 4094 && attached.Contains(l.Parent))
            .Select(l => new VlanSubInterface(l.Name, l.Ifindex, names.GetValueOrDefault(l.Parent, "?"), l.Parent, l.VlanId!.Value))
            .OrderBy(v => v.Name, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>The map's entries for these sub-interfaces: both directions of each.</summary>
    public static Dictionary<VlanPort, VlanPort> EntriesFor(IEnumerable<VlanSubInterface> subInterfaces)
    {
        var entries = new Dictionary<VlanPort, VlanPort>();
        foreach (var vlan in subInterfaces)
        {
            entries[new VlanPort(vlan.Parent, vlan.VlanId)] = new VlanPort(vlan.Ifindex, 0);
            entries[new VlanPort(vlan.Ifindex, 0)] = new VlanPort(vlan.Parent, vlan.VlanId);
        }
        return entries;
    }
}
