using Sluice.Model.State;

namespace Sluice.Daemon.Reconciling;

/// <summary>
/// What must change in the datapath to go from one desired state to the next: only the
/// services whose definition differs. Pure, so it is unit-tested on its own.
/// </summary>
public sealed record ReconcilePlan(IReadOnlyList<OwnedService> Upserts, IReadOnlyList<OwnedService> Removals)
{
    public bool IsEmpty => Upserts.Count == 0 && Removals.Count == 0;

    public static ReconcilePlan Between(DesiredState from, DesiredState to)
    {
        var upserts = to.Services.Values
            .Where(s => !from.Services.TryGetValue(s.Name, out var old) || !(ReferenceEquals(old, s) || old.SameDefinition(s)))
            .ToList();
        // A renamed endpoint is a removal of the old VIP:port plus an upsert of the new.
        var removals = from.Services.Values
            .Where(s => !to.Services.TryGetValue(s.Name, out var now) || now.Endpoint != s.Endpoint)
            .ToList();
        return new(upserts, removals);
    }
}
