using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Sluice.Model.Services;

namespace Sluice.Model.State;

/// <summary>The one JSON shape of services: API bodies, the state file, ETags.</summary>
public static class ModelJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    // Definitions are never changed once made (changes are new records), so their JSON is
    // computed once: state operations over 10,000 services compare it constantly.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ServiceDefinition, string> CanonicalCache = [];
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ServiceDefinition, string> ETagCache = [];

    public static string Canonical(ServiceDefinition service) =>
        CanonicalCache.GetValue(service, s => JsonSerializer.Serialize(s, Options));

    public static string Canonical(HealthCheckDefinition check) => JsonSerializer.Serialize(check, Options);

    /// <summary>A strong ETag of the definition: equal definitions, equal tags.</summary>
    public static string ETag(ServiceDefinition service) => ETagCache.GetValue(service, s =>
        "\"" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(Canonical(s))))[..16].ToLowerInvariant() + "\"");
}
