using Sluice.Datapath.Abi;
using Sluice.Datapath.Maps;

namespace Sluice.Datapath.Programming;

/// <summary>
/// Keeps sluice_reply_vips: for every backend endpoint (address, port, protocol) the VIP:ports
/// of the dnat services it serves. A dnat connection is one entry keyed by client -> VIP; its
/// replies (backend -> client) name no VIP and find it by trying these. The programmer writes
/// an endpoint's entry before a service using it goes live and after one leaves.
/// </summary>
internal sealed class ReplyVipTable(BpfMap<Endpoint, ReplyVips> map)
{
    // VIPs are tried in a stable order: by address, then port.
    private static readonly Comparer<ServiceKey> ByVip = Comparer<ServiceKey>.Create((a, b) =>
        a.Vip.ToHost() != b.Vip.ToHost() ? a.Vip.ToHost().CompareTo(b.Vip.ToHost()) : a.Port.ToHost().CompareTo(b.Port.ToHost()));

    private readonly Dictionary<Endpoint, SortedSet<ServiceKey>> services = [];

    /// <summary>The endpoints a service contributes: its backends, if it is dnat.</summary>
    public static IEnumerable<Endpoint> EndpointsOf(ServiceSpec spec) => spec.Mode != ServiceMode.Dnat
        ? []
        : spec.Backends.Select(b => new Endpoint(Be32.From(b.Address), Be16.FromHost(b.Port), (byte)spec.Protocol)).Distinct();

    /// <summary>Throws (changing nothing) if these specs, applied together, would give an endpoint
    /// more dnat services than the datapath tries for a reply.</summary>
    public void CheckRoom(IReadOnlyCollection<ServiceSpec> specs)
    {
        var replaced = specs.Select(s => s.Key).ToHashSet();
        foreach (var endpoint in specs.SelectMany(EndpointsOf).Distinct())
        {
            var kept = services.TryGetValue(endpoint, out var keys) ? keys.Count(k => !replaced.Contains(k)) : 0;
            var added = specs.Count(s => EndpointsOf(s).Contains(endpoint));
            if (kept + added > ReplyVips.Max)
            {
                throw new DatapathFullException(
                    $"backend {endpoint.Address}:{endpoint.Port.ToHost()}/{((L4Protocol)endpoint.Protocol).ToString().ToLowerInvariant()} would serve {kept + added} dnat services, more than the {ReplyVips.Max} one backend may (its replies name no VIP, so each is tried in turn)",
                    "Use fullnat for some of these services, or another backend port.");
            }
        }
    }

    /// <summary>Replaces @previous's contribution (if any) by @next's and writes the endpoints that changed.</summary>
    public void Replace(ServiceSpec? previous, ServiceSpec? next)
    {
        var touched = new HashSet<Endpoint>();
        if (previous is not null)
        {
            foreach (var endpoint in EndpointsOf(previous))
            {
                if (services.TryGetValue(endpoint, out var keys) && keys.Remove(previous.Key))
                {
                    touched.Add(endpoint);
                }
            }
        }
        if (next is not null)
        {
            foreach (var endpoint in EndpointsOf(next))
            {
                if (!services.TryGetValue(endpoint, out var keys))
                {
                    services[endpoint] = keys = new SortedSet<ServiceKey>(ByVip);
                }
                keys.Add(next.Key);
                touched.Add(endpoint);
            }
        }
        foreach (var endpoint in touched)
        {
            Write(endpoint);
        }
    }

    private void Write(Endpoint endpoint)
    {
        if (!services.TryGetValue(endpoint, out var keys) || keys.Count == 0)
        {
            services.Remove(endpoint);
            map.Delete(endpoint);
            return;
        }
        map.Update(endpoint, ReplyVips.Of(keys.Select(k => (k.Vip, k.Port)).ToList()));
    }

    /// <summary>Entries no programmed service accounts for (left by an earlier daemon): removed.</summary>
    public void RemoveUnknown()
    {
        foreach (var (endpoint, _) in map.ReadAll())
        {
            if (!services.ContainsKey(endpoint))
            {
                map.Delete(endpoint);
            }
        }
    }
}
