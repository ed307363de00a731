using System.Diagnostics;
using System.Net;
using Sluice.Datapath.Interop;

namespace Sluice.Datapath.Neighbours;

/// <summary>A backend's next hop as the kernel sees it now.</summary>
/// <param name="Interface">Egress interface, null if there is no route.</param>
/// <param name="NextHop">The neighbour packets to the backend go to (the backend itself, or a gateway).</param>
/// <param name="State">"reachable", "stale", ... (the neighbour entry's state), "incomplete"/"failed" while
/// unresolved, "no route" or "local".</param>
/// <param name="Problem">Why it is not resolved, for people; null when it is.</param>
public sealed record NextHopStatus(IPAddress Backend, string? Interface, IPAddress? NextHop, string State, string? Problem)
{
    public bool Resolved => Problem is null;
}

/// <summary>
/// Keeps every backend's next hop resolved before and while the backend is in service. The
/// datapath forwards only to next hops the kernel has a link-layer address for (bpf_fib_lookup
/// answers "no neighbour" otherwise, and the packet goes to the kernel, which drops it as a
/// martian when its source is the appliance's own SNAT address, never resolving anything). So
/// each backend's next hop gets a kernel-managed neighbour entry (NTF_EXT_MANAGED): the kernel
/// resolves it at once and keeps it resolved. Entries are tagged with <see cref="Protocol"/> so the
/// ones no backend needs any more are removed, also after a restart. Thread-safe.
/// </summary>
/// <param name="preparedGrace">How long a prepared backend is kept though Refresh does not name it yet.</param>
public sealed class NextHopKeeper(TimeSpan? preparedGrace = null) : IDisposable
{
    /// <summary>The NDA_PROTOCOL tag on the entries Sluice made (an unassigned RTPROT value).</summary>
    public const byte Protocol = 0xb5;

    private readonly RouteNetlink netlink = new();
    private readonly Lock gate = new();
    private readonly Dictionary<IPAddress, NextHopStatus> statuses = [];
    // Next hops (interface, address) whose managed entry we set, and the backends behind each.
    private readonly Dictionary<(uint Ifindex, IPAddress NextHop), HashSet<IPAddress>> kept = [];
    // Backends prepared but perhaps not yet in what Refresh is told to keep (the control plane
    // publishes its new state after programming): kept for a while regardless.
    private readonly Dictionary<IPAddress, DateTime> prepared = [];
    private readonly TimeSpan grace = preparedGrace ?? TimeSpan.FromSeconds(30);
    // The neighbour table as last read (Keep leaves others' static entries alone).
    private Dictionary<(uint, IPAddress), Neighbour> table = [];

    public IReadOnlyDictionary<IPAddress, NextHopStatus> Statuses
    {
        get
        {
            lock (gate)
            {
                return new Dictionary<IPAddress, NextHopStatus>(statuses);
            }
        }
    }

    public NextHopStatus? StatusOf(IPAddress backend)
    {
        lock (gate)
        {
            return statuses.GetValueOrDefault(backend);
        }
    }

    /// <summary>
    /// Before backends go into service: a managed entry for each new one's next hop, then up to
    /// <paramref name="patience"/> for them to resolve (a first packet then never depends on the
    /// kernel forwarding it). Backends already kept cost nothing. Never throws for a backend it
    /// cannot resolve: that shows in its status.
    /// </summary>
    public void Prepare(IEnumerable<IPAddress> backends, TimeSpan patience)
    {
        lock (gate)
        {
            var added = backends.Distinct().Where(b => !statuses.ContainsKey(b)).ToList();
            if (added.Count > 0)
            {
                table = ReadTable();
            }
            foreach (var backend in added)
            {
                prepared[backend] = DateTime.UtcNow;
                Keep(backend);
            }
            if (added.Count == 0)
            {
                return;
            }
            var clock = Stopwatch.StartNew();
            while (true)
            {
                Observe(added);
                if (added.All(b => statuses[b].Resolved || statuses[b].State is "no route" or "local" or "failed") || clock.Elapsed >= patience)
                {
                    return;
                }
                Thread.Sleep(10);
            }
        }
    }

    /// <summary>
    /// Keeps exactly <paramref name="backends"/>: routes looked up again (a changed route moves the
    /// managed entry), states read, entries no backend needs removed. Returns every backend's status.
    /// </summary>
    public IReadOnlyDictionary<IPAddress, NextHopStatus> Refresh(IReadOnlyCollection<IPAddress> backends)
    {
        lock (gate)
        {
            var wanted = backends.ToHashSet();
            foreach (var (backend, at) in prepared.ToList())
            {
                if (DateTime.UtcNow - at > grace)
                {
                    prepared.Remove(backend);
                }
                else
                {
                    wanted.Add(backend);
                }
            }
            foreach (var gone in statuses.Keys.Where(b => !wanted.Contains(b)).ToList())
            {
                statuses.Remove(gone);
            }
            foreach (var entry in kept.Values)
            {
                entry.Clear();
            }
            // An entry someone removed (ip neigh flush) or changed is set again.
            table = ReadTable();
            var managed = table.Values.Where(n => n.Managed).Select(n => (n.Ifindex, n.Address)).ToHashSet();
            foreach (var lost in kept.Keys.Where(k => !managed.Contains(k)).ToList())
            {
                kept.Remove(lost);
            }
            foreach (var backend in wanted)
            {
                Keep(backend);
            }
            foreach (var unneeded in kept.Where(k => k.Value.Count == 0).Select(k => k.Key).ToList())
            {
                kept.Remove(unneeded);
            }
            RemoveUnneeded();
            Observe(wanted);
            return new Dictionary<IPAddress, NextHopStatus>(statuses);
        }
    }

    public void Dispose() => netlink.Dispose();

    /// <summary>Looks the backend's route up and sets a managed entry for its next hop.</summary>
    private void Keep(IPAddress backend)
    {
        Route route;
        try
        {
            route = netlink.LookupRoute(backend);
        }
        catch (NoRouteException ex)
        {
            var local = ex.Message.Contains("local", StringComparison.Ordinal);
            statuses[backend] = new NextHopStatus(backend, null, null, local ? "local" : "no route", local ? null : ex.Message);
            return;
        }
        var key = (route.Ifindex, route.NextHop);
        if (!kept.TryGetValue(key, out var behind) && IsSomeoneElses(table.GetValueOrDefault(key)))
        {
            // A static entry, or another agent's: it is theirs to keep resolved, not ours to replace.
            kept[key] = behind = [];
        }
        else if (behind is null)
        {
            try
            {
                netlink.SetManagedNeighbour(route.Ifindex, route.NextHop, Protocol);
            }
            catch (BpfException ex)
            {
                statuses[backend] = new NextHopStatus(backend, InterfaceName(route.Ifindex), route.NextHop, "unmanaged",
                    $"cannot add a managed neighbour entry for {route.NextHop}: {ex.Message}");
                return;
            }
            kept[key] = behind = [];
        }
        behind.Add(backend);
        statuses[backend] = new NextHopStatus(backend, InterfaceName(route.Ifindex), route.NextHop, "incomplete",
            $"next hop {route.NextHop} not resolved yet");
    }

    private static bool IsSomeoneElses(Neighbour? entry) =>
        entry is not null && entry.Protocol != Protocol &&
        ((entry.State & (Neighbour.Permanent | Neighbour.NoArp)) != 0 || entry.Protocol != 0 || entry.Managed);

    private Dictionary<(uint, IPAddress), Neighbour> ReadTable()
    {
        var read = new Dictionary<(uint, IPAddress), Neighbour>();
        foreach (var neighbour in netlink.Neighbours())
        {
            read[(neighbour.Ifindex, neighbour.Address)] = neighbour;
        }
        return read;
    }

    /// <summary>Reads the neighbour table once and sets the status of each of <paramref name="backends"/> with a next hop.</summary>
    private void Observe(IEnumerable<IPAddress> backends)
    {
        var wanted = backends as IReadOnlySet<IPAddress> ?? backends.ToHashSet();
        table = ReadTable();
        foreach (var (key, behind) in kept)
        {
            var neighbour = table.GetValueOrDefault(key);
            foreach (var backend in behind.Where(wanted.Contains))
            {
                var name = InterfaceName(key.Ifindex);
                statuses[backend] = neighbour is { Resolved: true }
                    ? new NextHopStatus(backend, name, key.NextHop, neighbour.StateName, null)
                    : new NextHopStatus(backend, name, key.NextHop, neighbour?.StateName ?? "missing",
                        $"next hop {key.NextHop} on {name} is not resolved ({neighbour?.StateName ?? "no neighbour entry"}): nothing answers ARP for it");
            }
        }
    }

    /// <summary>Entries Sluice made that no backend needs (now, or since before a restart).</summary>
    private void RemoveUnneeded()
    {
        foreach (var neighbour in table.Values.Where(n => n.Protocol == Protocol))
        {
            if (!kept.ContainsKey((neighbour.Ifindex, neighbour.Address)))
            {
                netlink.DeleteNeighbour(neighbour.Ifindex, neighbour.Address);
            }
        }
    }

    private static string InterfaceName(uint ifindex) => Libc.IfIndexToName(ifindex) ?? $"ifindex {ifindex}";
}
