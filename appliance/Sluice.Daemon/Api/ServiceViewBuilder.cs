using Sluice.Daemon.Datapath;
using Sluice.Daemon.Health;
using Sluice.Daemon.Reconciling;
using Sluice.Daemon.Connections;
using Sluice.Model.State;

namespace Sluice.Daemon.Api;

/// <summary>Joins the desired state with health, the datapath's counters and the flow table.</summary>
public sealed class ServiceViewBuilder(Reconciler reconciler, HealthRegistry health, ConnectionTracking connections, Sluice.Datapath.Neighbours.NextHopKeeper nextHops)
{
    public ServiceView Build(OwnedService service) => BuildAll([service])[0];

    /// <summary>Reads the flow table once for all the services asked for.</summary>
    public List<ServiceView> BuildAll(IReadOnlyCollection<OwnedService> services)
    {
        var datapath = reconciler.Read(programmer =>
        {
            var live = connections.LiveCounts();
            return services.ToDictionary(s => s.Name, s =>
            {
                if (!programmer.Services.TryGetValue(SpecMapper.ToSpec(s.Definition).Key, out var entry))
                {
                    return (false, TrafficView.Zero, new Dictionary<string, (TrafficView, int)>());
                }
                return (true, TrafficView.From(programmer.ServiceCounters(entry.Id)),
                    entry.BackendIds.ToDictionary(b => b.Key, b => (TrafficView.From(programmer.BackendCounters(b.Value)), live.GetValueOrDefault((entry.Id, b.Value)))));
            });
        });
        return services.Select(service =>
        {
            var (programmed, traffic, backends) = datapath[service.Name];
            var backendViews = service.Definition.Backends.Select(b =>
            {
                var name = $"{b.Address}:{b.Port}";
                var (counters, liveFlows) = backends.GetValueOrDefault(name, (TrafficView.Zero, 0));
                var checkedHealth = service.Definition.HealthCheck is null ? null : health.Get(service.Name, name);
                return new BackendView(b.Address!, b.Port!.Value, b.Weight, b.State,
                    checkedHealth is null || checkedHealth.Up ? "up" : "down", checkedHealth?.LastError, liveFlows, counters,
                    NextHopView.From(nextHops.StatusOf(System.Net.IPAddress.Parse(b.Address!))));
            }).ToList();
            return new ServiceView(service.Name, service.Owner.ToString().ToLowerInvariant(), service.ETag, service.Definition,
                new ServiceStatusView(programmed, traffic, backendViews));
        }).ToList();
    }
}
