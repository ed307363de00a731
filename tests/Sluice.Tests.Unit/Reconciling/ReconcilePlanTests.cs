using Sluice.Daemon.Reconciling;
using Sluice.Model.Services;
using Sluice.Model.State;

namespace Sluice.Tests.Unit.Reconciling;

public sealed class ReconcilePlanTests
{
    private static ServiceDefinition Service(int i, int backends = 2) => new()
    {
        Vip = $"198.18.{100 + (i / 250 / 100)}.{1 + (i / 100 % 250)}",
        Port = 1000 + (i % 100),
        Backends = Enumerable.Range(0, backends).Select(b => new BackendDefinition { Address = $"198.18.2.{10 + b}", Port = 8080 }).ToList(),
    };

    private static DesiredState With(int count) =>
        DesiredState.Empty.ReplaceOwner(Owner.Config, Enumerable.Range(0, count).ToDictionary(i => $"s{i}", i => Service(i))).State;

    [Fact]
    public void OneChangeAmongTenThousandPlansOneService()
    {
        var before = With(10_000);
        var (after, kind, _) = before.Put("s4242", Service(4242, backends: 3), Owner.Config);
        Assert.Equal(ChangeKind.Updated, kind);
        var plan = ReconcilePlan.Between(before, after);
        Assert.Equal("s4242", Assert.Single(plan.Upserts).Name);
        Assert.Empty(plan.Removals);
    }

    [Fact]
    public void TheSameStatePlansNothing()
    {
        Assert.True(ReconcilePlan.Between(With(100), With(100)).IsEmpty);
    }

    [Fact]
    public void AMovedEndpointRemovesTheOldAndProgramsTheNew()
    {
        var before = With(3);
        var (after, _, _) = before.Put("s1", Service(1) with { Port = 9999 }, Owner.Config);
        var plan = ReconcilePlan.Between(before, after);
        Assert.Equal("s1", Assert.Single(plan.Upserts).Name);
        var removed = Assert.Single(plan.Removals);
        Assert.Equal(1001, removed.Definition.Port);
    }

    [Fact]
    public void AddedAndDeletedServicesAreTheOnlyOnesTouched()
    {
        var before = With(5);
        var (after, _, _) = before.Remove("s2", Owner.Config);
        (after, _, _) = after.Put("new", Service(77), Owner.Api);
        var plan = ReconcilePlan.Between(before, after);
        Assert.Equal(["new"], plan.Upserts.Select(s => s.Name));
        Assert.Equal(["s2"], plan.Removals.Select(s => s.Name));
    }
}
