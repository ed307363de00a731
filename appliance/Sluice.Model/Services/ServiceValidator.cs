using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Sluice.Model.Validation;

namespace Sluice.Model.Services;

/// <summary>Validates a service definition and reports every error with its field path.</summary>
public static partial class ServiceValidator
{
    public static readonly IReadOnlyList<int> MaglevPrimes = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65537, 131071];

    public const int MaxBackends = 4096;

    [GeneratedRegex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[0-9]{3}(-[0-9]{3})?$")]
    private static partial Regex StatusRangePattern();

    public static void ValidateName(string name, string path, ValidationErrors errors)
    {
        if (!NamePattern().IsMatch(name))
        {
            errors.Add(path, "must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit");
        }
    }

    public static void Validate(ServiceDefinition service, string prefix, ValidationErrors errors)
    {
        string P(string field) => ValidationErrors.Join(prefix, field);

        if (service.Vip is null) errors.Add(P("vip"), "is required");
        else if (!IsIPv4(service.Vip)) errors.Add(P("vip"), $"\"{service.Vip}\" is not an IPv4 address");
        if (service.Port is null) errors.Add(P("port"), "is required");
        else if (service.Port is < 1 or > 65535) errors.Add(P("port"), "must be 1-65535");
        if (service.Protocol is not ("tcp" or "udp")) errors.Add(P("protocol"), "must be tcp or udp");
        if (service.Mode is not ("fullnat" or "dnat")) errors.Add(P("mode"), service.Mode == "dsr" ? "dsr is not supported yet; use fullnat or dnat" : "must be fullnat or dnat");
        if (service.Scheduler is not "maglev") errors.Add(P("scheduler"), "must be maglev");
        if (service.Affinity is not ("none" or "client")) errors.Add(P("affinity"), "must be none or client");
        if (service.DrainTimeoutMs is < 0 or > 86_400_000) errors.Add(P("drainTimeoutMs"), "must be 0-86400000");
        if (service.MaglevTableSize is { } size && !MaglevPrimes.Contains(size))
        {
            errors.Add(P("maglevTableSize"), $"must be one of {string.Join(", ", MaglevPrimes)}");
        }
        if (service.Backends is null)
        {
            errors.Add(P("backends"), "must be a list (it may be empty)");
        }
        else
        {
            if (service.Backends.Count > MaxBackends) errors.Add(P("backends"), $"at most {MaxBackends} backends");
            var seen = new HashSet<string>();
            for (var i = 0; i < service.Backends.Count; i++)
            {
                ValidateBackend(service.Backends[i], P($"backends[{i}]"), errors, seen);
            }
        }
        if (service.HealthCheck is { } check)
        {
            ValidateHealthCheck(check, P("healthCheck"), errors);
        }
    }

    public static void ValidateBackend(BackendDefinition? backend, string prefix, ValidationErrors errors, HashSet<string>? seen = null)
    {
        if (backend is null)
        {
            errors.Add(prefix, "must be an object");
            return;
        }
        string P(string field) => ValidationErrors.Join(prefix, field);
        if (backend.Address is null) errors.Add(P("address"), "is required");
        else if (!IsIPv4(backend.Address)) errors.Add(P("address"), $"\"{backend.Address}\" is not an IPv4 address");
        if (backend.Port is null) errors.Add(P("port"), "is required");
        else if (backend.Port is < 1 or > 65535) errors.Add(P("port"), "must be 1-65535");
        if (backend.Weight is < 0 or > 10000) errors.Add(P("weight"), "must be 0-10000");
        if (backend.State is not ("active" or "draining")) errors.Add(P("state"), "must be active or draining");
        if (seen is not null && backend.Address is not null && backend.Port is not null && !seen.Add($"{backend.Address}:{backend.Port}"))
        {
            errors.Add(prefix, $"{backend.Address}:{backend.Port} is listed twice");
        }
    }

    private static void ValidateHealthCheck(HealthCheckDefinition check, string prefix, ValidationErrors errors)
    {
        string P(string field) => ValidationErrors.Join(prefix, field);
        if (check.Type is not ("tcp" or "http" or "https" or "udp")) errors.Add(P("type"), "must be tcp, http, https or udp");
        if (check.IntervalMs is < 100 or > 3_600_000) errors.Add(P("intervalMs"), "must be 100-3600000");
        if (check.TimeoutMs < 10 || check.TimeoutMs > check.IntervalMs) errors.Add(P("timeoutMs"), "must be 10 or more and at most intervalMs");
        if (check.Rise is < 1 or > 100) errors.Add(P("rise"), "must be 1-100");
        if (check.Fall is < 1 or > 100) errors.Add(P("fall"), "must be 1-100");
        if (check.Path is { } path && !path.StartsWith('/')) errors.Add(P("path"), "must start with /");
        if (check.Path is not null && check.Type is not ("http" or "https")) errors.Add(P("path"), "only for http and https checks");
        if (check.Port is < 1 or > 65535) errors.Add(P("port"), "must be 1-65535");
        if (check.ExpectStatus is { } expect)
        {
            if (check.Type is not ("http" or "https")) errors.Add(P("expectStatus"), "only for http and https checks");
            else if (!StatusRangePattern().IsMatch(expect) || !ValidRange(check)) errors.Add(P("expectStatus"), "must be a status 100-599 or a range such as 200-399");
        }
        if (check.Payload is { } payload)
        {
            if (check.Type is not "udp") errors.Add(P("payload"), "only for udp checks");
            else if (payload.Length is 0 or > 1024) errors.Add(P("payload"), "must be 1-1024 characters");
        }
    }

    private static bool ValidRange(HealthCheckDefinition check)
    {
        var (low, high) = check.StatusRange();
        return low is >= 100 and <= 599 && high is >= 100 and <= 599 && low <= high;
    }

    public static bool IsIPv4(string text) =>
        IPAddress.TryParse(text, out var address) && address.AddressFamily == AddressFamily.InterNetwork
        && text.Count(c => c == '.') == 3;

    /// <summary>The datapath's identity of a service: VIP, port, protocol.</summary>
    public static string Endpoint(ServiceDefinition service) => EndpointCache.GetValue(service, s => $"{s.Vip}:{s.Port}/{s.Protocol}");

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ServiceDefinition, string> EndpointCache = [];
}
