using Sluice.Daemon.Datapath;
using Sluice.Daemon.Events;
using Sluice.Daemon.Reconciling;
using Sluice.Datapath.Abi;
using Sluice.Daemon.Connections;
using Sluice.Datapath.Connections;

namespace Sluice.Daemon.Api;

/// <summary>A live flow: who, to which service and backend, through which SNAT port, since when.</summary>
public sealed record FlowView(string Client, string Vip, string Protocol, string Service, string Backend,
    string? SnatAddress, int? SnatPort, double AgeSeconds, double IdleSeconds, string State);

public sealed record FlowList(int Total, IReadOnlyList<FlowView> Flows);

public sealed record EventList(IReadOnlyList<SluiceEvent> Events);

/// <summary>GET /api/v1/flows (from the flow table) and GET /api/v1/events (recent health, config, datapath and drain events).</summary>
public static class ObservabilityEndpoints
{
    public const int MaxLimit = 10_000;

    public static RouteGroupBuilder MapObservabilityEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/flows", Flows).WithTags("flows").Produces<FlowList>().ProducesValidationProblem();
        api.MapGet("/events", RecentEvents).WithTags("events").Produces<EventList>().ProducesValidationProblem();
        return api;
    }

    public static IResult Flows(string? service, string? backend, int? limit, Reconciler reconciler, ConnectionTracking connections)
    {
        if (limit is < 1 or > MaxLimit)
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["limit"] = [$"must be 1-{MaxLimit}"] });
        }
        if (service is not null && !reconciler.Current.Services.ContainsKey(service))
        {
            return Results.Problem(statusCode: 404, title: "Not Found", detail: $"no service named {service}");
        }
        var state = reconciler.Current;
        var (total, flows) = reconciler.Read(programmer =>
        {
            // Service and backend names by the ids the flow table holds.
            var names = new Dictionary<uint, (string Name, Dictionary<uint, string> Backends)>();
            foreach (var owned in state.Services.Values)
            {
                if (programmer.Services.TryGetValue(SpecMapper.ToSpec(owned.Definition).Key, out var programmed))
                {
                    names[programmed.Id] = (owned.Name, programmed.BackendIds.ToDictionary(b => b.Value, b => b.Key));
                }
            }
            var now = ConnectionTable.NowNs();
            var timeouts = connections.Timeouts;
            var matching = connections.Read().Connections
                .Where(c => c.IsLive(now, timeouts) && names.ContainsKey(c.Forward.ServiceId))
                .Select(c => View(c, names[c.Forward.ServiceId], now))
                .Where(v => (service is null || v.Service == service) && (backend is null || v.Backend == backend))
                .OrderBy(v => v.AgeSeconds)
                .ToList();
            return (matching.Count, matching.Take(limit ?? 100).ToList());
        });
        return Results.Ok(new FlowList(total, flows));
    }

    private static FlowView View(Connection connection, (string Name, Dictionary<uint, string> Backends) service, ulong now)
    {
        var client = connection.Client;
        var flow = connection.Forward;
        var fullNat = flow.Mode == ServiceMode.FullNat;
        return new FlowView(
            $"{client.SourceAddress}:{client.SourcePort.ToHost()}",
            $"{client.DestinationAddress}:{client.DestinationPort.ToHost()}",
            client.Protocol == 17 ? "udp" : "tcp",
            service.Name,
            service.Backends.GetValueOrDefault(flow.BackendId, $"#{flow.BackendId}"),
            fullNat ? flow.SnatAddress.ToString() : null,
            fullNat ? flow.SnatPort.ToHost() : null,
            Math.Round(Seconds(now, flow.CreatedNs), 1),
            Math.Round(Seconds(now, connection.LastSeenNs), 1),
            StateName(connection.State));
    }

    private static string StateName(ConnectionState state) => state switch
    {
        ConnectionState.Handshake => "handshake",
        ConnectionState.Established => "established",
        ConnectionState.HalfClosed => "half-closed",
        ConnectionState.Closed => "closed",
        _ => "open",
    };

    private static double Seconds(ulong now, ulong then) => now > then ? (now - then) / 1e9 : 0;

    public static IResult RecentEvents(int? limit, string? kind, EventLog events)
    {
        if (limit is < 1 or > EventLog.Capacity)
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["limit"] = [$"must be 1-{EventLog.Capacity}"] });
        }
        if (kind is not (null or "health" or "config" or "datapath" or "drain" or "api" or "next-hop"))
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["kind"] = ["must be health, config, datapath, drain, api or next-hop"] });
        }
        return Results.Ok(new EventList(events.Recent(limit ?? 100, kind)));
    }
}
