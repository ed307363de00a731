using Sluice.Daemon.Reconciling;
using Sluice.Datapath.Abi;
using Sluice.Model.State;

namespace Sluice.Daemon.Api;

/// <summary>Joins the desired state with the datapath's counters.</summary>
public static class ServiceViewBuilder
{
    public static ServiceView Build(OwnedService service, Reconciler reconciler)
    {
        var key = SpecMapper.ToSpec(service.Definition).Key;
        var (programmed, traffic, backends) = reconciler.Read(programmer =>
        {
            if (!programmer.Services.TryGetValue(key, out var entry))
            {
                return (false, TrafficView.Zero, new Dictionary<string, TrafficView>());
            }
            return (true, TrafficView.From(programmer.ServiceCounters(entry.Id)),
                entry.BackendIds.ToDictionary(b => b.Key, b => TrafficView.From(programmer.BackendCounters(b.Value))));
        });
        var health = service.Definition.HealthCheck is null ? "up" : "unknown";
        var backendViews = service.Definition.Backends.Select(b => new BackendView(
            b.Address!, b.Port!.Value, b.Weight, b.State, health,
            backends.GetValueOrDefault($"{b.Address}:{b.Port}") ?? TrafficView.Zero)).ToList();
        return new ServiceView(service.Name, service.Owner.ToString().ToLowerInvariant(), service.ETag, service.Definition,
            new ServiceStatusView(programmed, traffic, backendViews));
    }
}
