using Sluice.Model.State;

namespace Sluice.Daemon.Reconciling;

/// <summary>
/// What must change in the datapath to go from one desired state to the next: only the
/// services whose definition differs. Pure, so it is unit-tested on its own.
/// </summary>
public sealed record ReconcilePlan(IReadOnlyList<OwnedService> Upserts, IReadOnlyList<OwnedService> Removals)
{
    public bool IsEmpty => Upserts.Count == 0 && Removals.Count == 0;

    /// <summary>
    /// One ordered walk over both states (they are sorted by the same ordinal comparer): no
    /// lookups, and an unchanged service is the same object in both, so it costs a reference
    /// comparison. One change among 10,000 services is a few hundred microseconds.
    /// </summary>
    public static ReconcilePlan Between(DesiredState from, DesiredState to)
    {
        var upserts = new List<OwnedService>();
        var removals = new List<OwnedService>();
        using var before = from.Services.Values.GetEnumerator();
        using var after = to.Services.Values.GetEnumerator();
        var hasBefore = before.MoveNext();
        var hasAfter = after.MoveNext();
        while (hasBefore || hasAfter)
        {
            var order = !hasBefore ? 1 : !hasAfter ? -1 : string.CompareOrdinal(before.Current.Name, after.Current.Name);
            if (order < 0)
            {
                removals.Add(before.Current); // gone
                hasBefore = before.MoveNext();
            }
            else if (order > 0)
            {
                upserts.Add(after.Current); // new
                hasAfter = after.MoveNext();
            }
            else
            {
                var (old, now) = (before.Current, after.Current);
                if (!ReferenceEquals(old, now) && !old.SameDefinition(now))
                {
                    upserts.Add(now);
                    // A moved endpoint is a removal of the old VIP:port plus an upsert of the new.
                    if (old.Endpoint != now.Endpoint)
                    {
                        removals.Add(old);
                    }
                }
                hasBefore = before.MoveNext();
                hasAfter = after.MoveNext();
            }
        }
        return new(upserts, removals);
    }
}
