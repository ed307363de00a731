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
}

public sealed record BackendDefinition
{
    public string? Address { get; init; }
    public int? Port { get; init; }
    public int Weight { get; init; } = 1;
    public string State { get; init; } = "active";
}

/// <summary>Accepted and validated now; probing arrives with the health-check work.</summary>
public sealed record HealthCheckDefinition
{
    public string Type { get; init; } = "tcp";
    public int IntervalMs { get; init; } = 2000;
    public int TimeoutMs { get; init; } = 1000;
    public int Rise { get; init; } = 2;
    public int Fall { get; init; } = 3;
    public string? Path { get; init; }
}
