using System.Collections.Concurrent;

namespace Sluice.Daemon.Health;

/// <summary>A backend's health as its checks see it.</summary>
public sealed record BackendHealth(bool Up, int Successes, int Failures, DateTimeOffset Since, string? LastError);

/// <summary>
/// Health of every checked backend, by service name and backend "address:port". A backend
/// starts up (as keepalived does), so a restart of sluiced never takes healthy backends
/// out while their first probes run; it goes down after `fall` failures in a row and up
/// again after `rise` successes in a row. Unchecked backends are not here and count as up.
/// </summary>
public sealed class HealthRegistry
{
    private readonly ConcurrentDictionary<(string Service, string Backend), BackendHealth> states = new();

    public BackendHealth? Get(string service, string backend) => states.GetValueOrDefault((service, backend));

    public bool IsDown(string service, string backend) => states.TryGetValue((service, backend), out var health) && !health.Up;

    /// <summary>Records one probe result; returns the new state when it changed.</summary>
    public bool? Report(string service, string backend, string? error, int rise, int fall)
    {
        var key = (service, backend);
        var before = states.GetOrAdd(key, _ => new BackendHealth(true, 0, 0, DateTimeOffset.UtcNow, null));
        var after = error is null
            ? before with { Successes = before.Successes + 1, Failures = 0 }
            : before with { Failures = before.Failures + 1, Successes = 0, LastError = error };
        if (before.Up && after.Failures >= fall)
        {
            after = after with { Up = false, Since = DateTimeOffset.UtcNow };
        }
        else if (!before.Up && after.Successes >= rise)
        {
            after = after with { Up = true, Since = DateTimeOffset.UtcNow, LastError = null };
        }
        states[key] = after;
        return after.Up != before.Up ? after.Up : null;
    }

    /// <summary>Forgets backends no longer checked, so a re-added one starts fresh.</summary>
    public void Forget(string service, string backend) => states.TryRemove((service, backend), out _);
}
