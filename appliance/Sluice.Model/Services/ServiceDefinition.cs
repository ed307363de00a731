namespace Sluice.Model.Services;

/// <summary>
/// A service as users write it: the REST contract's body, and an entry under
/// <c>services:</c> in the config file. Nullable where "missing" must be told apart
/// from a default; defaults are the contract's.
/// </summary>
public sealed record ServiceDefinition
{
    public string? Vip { get; init; }
    public int? Port { get; init; }
    public string Protocol { get; init; } = "tcp";
    public string Mode { get; init; } = "fullnat";
    public string Scheduler { get; init; } = "maglev";
    public string Affinity { get; init; } = "none";
    public List<BackendDefinition> Backends { get; init; } = [];
    public HealthCheckDefinition? HealthCheck { get; init; }

    /// <summary>Optional prime Maglev table size; by default chosen from the backend count.</summary>
    public int? MaglevTableSize { get; init; }

    /// <summary>A draining backend is removed when its last flow ends, or after this long.</summary>
    public int? DrainTimeoutMs { get; init; }

    public const int DefaultDrainTimeoutMs = 300_000;
}

public sealed record BackendDefinition
{
    public string? Address { get; init; }
    public int? Port { get; init; }
    public int Weight { get; init; } = 1;
    public string State { get; init; } = "active";
}

/// <summary>An active probe of every backend of a service.</summary>
public sealed record HealthCheckDefinition
{
    public string Type { get; init; } = "tcp";
    public int IntervalMs { get; init; } = 2000;
    public int TimeoutMs { get; init; } = 1000;
    public int Rise { get; init; } = 2;
    public int Fall { get; init; } = 3;

    /// <summary>Probe this port instead of the backend's.</summary>
    public int? Port { get; init; }

    /// <summary>http/https: the path to GET (default /).</summary>
    public string? Path { get; init; }

    /// <summary>http/https: accepted status codes, "200-399" (the default) or "200".</summary>
    public string? ExpectStatus { get; init; }

    /// <summary>udp: the datagram to send (default "ping"); any reply counts as up.</summary>
    public string? Payload { get; init; }

    /// <summary>Flows of a backend that goes down are re-hashed unless this is true.</summary>
    public bool? KeepFlowsWhenDown { get; init; }

    public (int Low, int High) StatusRange()
    {
        var text = ExpectStatus ?? "200-399";
        var parts = text.Split('-');
        return parts.Length == 1 ? (int.Parse(parts[0]), int.Parse(parts[0])) : (int.Parse(parts[0]), int.Parse(parts[1]));
    }
}
