using System.Collections.Immutable;
using Sluice.Model.Services;

namespace Sluice.Model.State;

/// <summary>One service of the desired state: its name, owner and definition.</summary>
public sealed record OwnedService(string Name, Owner Owner, ServiceDefinition Definition)
{
    public string Endpoint => ServiceValidator.Endpoint(Definition);

    public string ETag => ModelJson.ETag(Definition);

    /// <summary>Same definition: the same object (unchanged in an immutable state) or the same canonical JSON.</summary>
    public bool SameDefinition(OwnedService other) =>
        ReferenceEquals(Definition, other.Definition) || ModelJson.Canonical(Definition) == ModelJson.Canonical(other.Definition);
}

public enum ChangeKind
{
    Created,
    Updated,
    Unchanged,
    Removed,
}

/// <summary>Why a change was refused: another owner holds the name or the VIP:port.</summary>
public sealed record Conflict(string Message);

/// <summary>
/// The immutable desired state: every service by name, each with one owner. Changes
/// return a new state (or a conflict) and never touch another owner's services.
/// </summary>
public sealed record DesiredState(ImmutableSortedDictionary<string, OwnedService> Services)
{
    public static readonly DesiredState Empty = new(ImmutableSortedDictionary<string, OwnedService>.Empty.WithComparers(StringComparer.Ordinal));

    /// <summary>Creates or replaces one service on behalf of <paramref name="owner"/>.</summary>
    public (DesiredState State, ChangeKind Kind, Conflict? Conflict) Put(string name, ServiceDefinition definition, Owner owner)
    {
        var candidate = new OwnedService(name, owner, definition);
        if (Services.TryGetValue(name, out var existing))
        {
            if (existing.Owner != owner)
            {
                return (this, ChangeKind.Unchanged, new Conflict($"service {name} is owned by {existing.Owner.ToString().ToLowerInvariant()}, not {owner.ToString().ToLowerInvariant()}"));
            }
            if (existing.SameDefinition(candidate))
            {
                return (this, ChangeKind.Unchanged, null);
            }
        }
        var holder = Services.Values.FirstOrDefault(s => s.Name != name && s.Endpoint == candidate.Endpoint);
        if (holder is not null)
        {
            return (this, ChangeKind.Unchanged, new Conflict($"{candidate.Endpoint} is already used by service {holder.Name} (owner {holder.Owner.ToString().ToLowerInvariant()})"));
        }
        return (new DesiredState(Services.SetItem(name, candidate)), existing is null ? ChangeKind.Created : ChangeKind.Updated, null);
    }

    /// <summary>Removes one service of <paramref name="owner"/>; null kind if there is none by that name.</summary>
    public (DesiredState State, ChangeKind? Kind, Conflict? Conflict) Remove(string name, Owner owner)
    {
        if (!Services.TryGetValue(name, out var existing))
        {
            return (this, null, null);
        }
        if (existing.Owner != owner)
        {
            return (this, null, new Conflict($"service {name} is owned by {existing.Owner.ToString().ToLowerInvariant()}, not {owner.ToString().ToLowerInvariant()}"));
        }
        return (new DesiredState(Services.Remove(name)), ChangeKind.Removed, null);
    }

    /// <summary>
    /// Replaces all of one owner's services at once (a config reload, a Kubernetes
    /// relist). Refused whole, with every conflict, if any name or VIP:port is held by
    /// another owner.
    /// </summary>
    public (DesiredState State, IReadOnlyList<Conflict> Conflicts) ReplaceOwner(Owner owner, IReadOnlyDictionary<string, ServiceDefinition> services)
    {
        var others = Services.Values.Where(s => s.Owner != owner).ToList();
        var othersByName = others.ToDictionary(s => s.Name, StringComparer.Ordinal);
        var othersByEndpoint = others.GroupBy(s => s.Endpoint).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var conflicts = new List<Conflict>();
        foreach (var (name, definition) in services)
        {
            var endpoint = ServiceValidator.Endpoint(definition);
            if (othersByName.TryGetValue(name, out var sameName))
                conflicts.Add(new Conflict($"service {name} is owned by {sameName.Owner.ToString().ToLowerInvariant()}"));
            else if (othersByEndpoint.TryGetValue(endpoint, out var sameEndpoint))
                conflicts.Add(new Conflict($"service {name}: {endpoint} is already used by service {sameEndpoint.Name} (owner {sameEndpoint.Owner.ToString().ToLowerInvariant()})"));
        }
        if (conflicts.Count > 0)
        {
            return (this, conflicts);
        }
        var builder = ImmutableSortedDictionary.CreateBuilder<string, OwnedService>(StringComparer.Ordinal);
        foreach (var service in others)
        {
            builder[service.Name] = service;
        }
        foreach (var (name, definition) in services)
        {
            // Keep the object of an unchanged service, so later comparisons are by reference.
            builder[name] = Services.TryGetValue(name, out var current) && current.Owner == owner
                && current.SameDefinition(new OwnedService(name, owner, definition)) ? current : new OwnedService(name, owner, definition);
        }
        return (new DesiredState(builder.ToImmutable()), []);
    }

    public IReadOnlyDictionary<string, ServiceDefinition> Of(Owner owner) =>
        Services.Values.Where(s => s.Owner == owner).ToDictionary(s => s.Name, s => s.Definition);
}
