using Sluice.Daemon.Reconciling;
using Sluice.Datapath.Programming;
using Sluice.Model.Services;

namespace Sluice.Tests.Unit.Reconciling;

public sealed class SpecMapperTests
{
    private static ServiceDefinition Web(bool keepFlows = false) => new()
    {
        Vip = "198.18.100.10",
        Port = 80,
        Backends =
        [
            new BackendDefinition { Address = "198.18.2.1", Port = 8080 },
            new BackendDefinition { Address = "198.18.2.2", Port = 8080, State = "draining" },
            new BackendDefinition { Address = "198.18.2.3", Port = 8080 },
        ],
        HealthCheck = new HealthCheckDefinition { KeepFlowsWhenDown = keepFlows },
    };

    [Fact]
    public void ADownBackendLeavesTheTableAndItsFlowsAreRehashedByDefault()
    {
        var spec = SpecMapper.ToSpec(Web(), backend => backend is "198.18.2.2:8080" or "198.18.2.3:8080");
        Assert.Equal([BackendState.Active, BackendState.Down, BackendState.Down], spec.Backends.Select(b => b.State));
    }

    [Fact]
    public void KeepFlowsWhenDownTurnsDownIntoDraining()
    {
        var spec = SpecMapper.ToSpec(Web(keepFlows: true), backend => backend == "198.18.2.3:8080");
        Assert.Equal([BackendState.Active, BackendState.Draining, BackendState.Draining], spec.Backends.Select(b => b.State));
    }

    [Fact]
    public void WithoutHealthInformationTheDefinitionDecides()
    {
        Assert.Equal([BackendState.Active, BackendState.Draining, BackendState.Active], SpecMapper.ToSpec(Web()).Backends.Select(b => b.State));
    }
}
