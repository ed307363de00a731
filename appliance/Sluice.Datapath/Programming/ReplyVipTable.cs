using Sluice.Datapath.Abi;
using Sluice.Datapath.Maps;

namespace Sluice.Datapath.Programming;

/// <summary>
/// Keeps sluice_reply_vips: for every backend endpoint (address, port, protocol) how many dnat
/// services it serves and the VIP:ports of the first few. A dnat connection is one entry keyed
/// by client -> VIP; its replies (backend -> client) name no VIP: with one service they find it
/// through that VIP; with several, through a slot the connection claims (bpf/lib/balancer.h).
/// The programmer writes an endpoint's entry before a service using it goes live and after one
/// leaves.
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
