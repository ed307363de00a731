using Sluice.Datapath.Abi;
using Sluice.Model.Services;

namespace Sluice.Daemon.Api;

/// <summary>A service as the API shows it: what was asked (spec) and what is (status).</summary>
public sealed record ServiceView(string Name, string Owner, [property: System.Text.Json.Serialization.JsonPropertyName("etag")] string ETag, ServiceDefinition Spec, ServiceStatusView Status);

public sealed record ServiceStatusView(bool Programmed, TrafficView Traffic, IReadOnlyList<BackendView> Backends);

/// <summary>A backend: health "up" or "down" (with the last probe error), live flows in the flow table, counters, its next hop.</summary>
public sealed record BackendView(string Address, int Port, int Weight, string State, string Health, string? HealthDetail, int LiveFlows, TrafficView Traffic,
    NextHopView? NextHop = null);

/// <summary>Where the datapath sends a backend's packets: the neighbour (the backend or a gateway) on an
/// interface, and whether the kernel has resolved it (the datapath forwards only to resolved ones).</summary>
public sealed record NextHopView(string? Interface, string? Address, string State, bool Resolved, string? Problem)
{
    public static NextHopView? From(Sluice.Datapath.Neighbours.NextHopStatus? status) => status is null ? null
        : new(status.Interface, status.NextHop?.ToString(), status.State, status.Resolved, status.Problem);
}

public sealed record TrafficView(ulong Packets, ulong Bytes, ulong NewFlows, ulong ReplyPackets, ulong ReplyBytes)
{
    public static readonly TrafficView Zero = new(0, 0, 0, 0, 0);

    public static TrafficView From(TrafficCounters c) => new(c.Packets, c.Bytes, c.NewFlows, c.ReplyPackets, c.ReplyBytes);
}

public sealed record ServiceList(IReadOnlyList<ServiceView> Services);

/// <summary>The answer to <c>?dryRun=true</c>: what would change, nothing changed.</summary>
public sealed record DryRunResult(bool DryRun, string Change, string Name, ServiceDefinition? Spec, [property: System.Text.Json.Serialization.JsonPropertyName("etag")] string? ETag);

/// <summary>Body of PUT .../backends/{address}:{port}.</summary>
public sealed record BackendPatch
{
    public int? Weight { get; init; }
    public string? State { get; init; }
}
