using Sluice.Daemon.Health;

namespace Sluice.Tests.Unit.Health;

public sealed class HealthRegistryTests
{
    private const string Web = "web", Backend = "198.18.2.2:8080";

    [Fact]
    public void ABackendStartsUpGoesDownAfterFallFailuresInARowAndUpAfterRiseSuccesses()
    {
        var registry = new HealthRegistry();
        Assert.False(registry.IsDown(Web, Backend)); // unknown counts as up

        Assert.Null(registry.Report(Web, Backend, "refused", rise: 2, fall: 3));
        Assert.Null(registry.Report(Web, Backend, "refused", rise: 2, fall: 3));
        Assert.False(registry.IsDown(Web, Backend));
        Assert.False(registry.Report(Web, Backend, "refused", rise: 2, fall: 3)); // the third: down
        Assert.True(registry.IsDown(Web, Backend));
        Assert.Equal("refused", registry.Get(Web, Backend)!.LastError);

        Assert.Null(registry.Report(Web, Backend, null, rise: 2, fall: 3));
        Assert.True(registry.Report(Web, Backend, null, rise: 2, fall: 3)); // the second success: up
        Assert.False(registry.IsDown(Web, Backend));
        Assert.Null(registry.Get(Web, Backend)!.LastError);
    }

    [Fact]
    public void OneSuccessBetweenFailuresStartsTheCountAgain()
    {
        var registry = new HealthRegistry();
        Assert.Null(registry.Report(Web, Backend, "timeout", rise: 1, fall: 2));
        Assert.Null(registry.Report(Web, Backend, null, rise: 1, fall: 2));
        Assert.Null(registry.Report(Web, Backend, "timeout", rise: 1, fall: 2));
        Assert.False(registry.IsDown(Web, Backend));
        Assert.False(registry.Report(Web, Backend, "timeout", rise: 1, fall: 2));
    }

    [Fact]
    public void AForgottenBackendStartsAfreshAsUp()
    {
        var registry = new HealthRegistry();
        registry.Report(Web, Backend, "refused", rise: 1, fall: 1);
        Assert.True(registry.IsDown(Web, Backend));
        registry.Forget(Web, Backend);
        Assert.False(registry.IsDown(Web, Backend));
        Assert.Null(registry.Get(Web, Backend));
    }
}
