using Sluice.Model.Services;
using Sluice.Model.State;

namespace Sluice.Tests.Unit.State;

public sealed class DesiredStateTests
{
    private static ServiceDefinition Web(int port = 80, string vip = "198.18.100.10") => new()
    {
        Vip = vip, Port = port, Backends = [new BackendDefinition { Address = "198.18.2.2", Port = 8080 }],
    };

    [Fact]
    public void PutCreatesThenUpdatesThenSeesNoChange()
    {
        var (state, kind, conflict) = DesiredState.Empty.Put("web", Web(), Owner.Api);
        Assert.Equal(ChangeKind.Created, kind);
        Assert.Null(conflict);
        (state, kind, _) = state.Put("web", Web() with { Mode = "dnat" }, Owner.Api);
        Assert.Equal(ChangeKind.Updated, kind);
        var (same, unchanged, _) = state.Put("web", Web() with { Mode = "dnat" }, Owner.Api);
        Assert.Equal(ChangeKind.Unchanged, unchanged);
        Assert.Same(state, same);
    }

    [Fact]
    public void AnotherOwnersServiceIsNeverChanged()
    {
        var (state, _, _) = DesiredState.Empty.Put("web", Web(), Owner.Config);
        var (after, _, conflict) = state.Put("web", Web() with { Mode = "dnat" }, Owner.Api);
        Assert.NotNull(conflict);
        Assert.Contains("owned by config", conflict.Message);
        Assert.Same(state, after);
        var (afterRemove, removed, removeConflict) = state.Remove("web", Owner.Api);
        Assert.Null(removed);
        Assert.NotNull(removeConflict);
        Assert.Same(state, afterRemove);
    }

    [Fact]
    public void AVipPortClaimedTwiceIsAConflictWhicheverTheOwner()
    {
        var (state, _, _) = DesiredState.Empty.Put("web", Web(), Owner.Config);
        var (_, _, sameOwner) = state.Put("web2", Web(), Owner.Config);
        var (_, _, otherOwner) = state.Put("web3", Web(), Owner.Api);
        Assert.Contains("already used by service web", sameOwner!.Message);
        Assert.Contains("owner config", otherOwner!.Message);
        var (_, kind, ok) = state.Put("web4", Web() with { Protocol = "udp" }, Owner.Api); // same VIP:port, other protocol
        Assert.Null(ok);
        Assert.Equal(ChangeKind.Created, kind);
    }

    [Fact]
    public void ReplacingAnOwnersServicesKeepsTheOthersAndRefusesConflictsWhole()
    {
        var (state, _, _) = DesiredState.Empty.Put("api-web", Web(81), Owner.Api);
        (state, _, _) = state.Put("old", Web(82), Owner.Config);

        var (replaced, conflicts) = state.ReplaceOwner(Owner.Config, new Dictionary<string, ServiceDefinition> { ["new"] = Web(83) });
        Assert.Empty(conflicts);
        Assert.Equal(["api-web", "new"], replaced.Services.Keys);

        var (refused, refusals) = state.ReplaceOwner(Owner.Config, new Dictionary<string, ServiceDefinition>
        {
            ["fine"] = Web(84), ["api-web"] = Web(85), ["clash"] = Web(81),
        });
        Assert.Equal(2, refusals.Count);
        Assert.Same(state, refused);
    }
}
