using Sluice.Datapath.Programming;

namespace Sluice.Tests.Unit.Programming;

public sealed class IdAllocatorTests
{
    [Fact]
    public void FreshIdsComeFirstThenTheOldestReleased()
    {
        var ids = new IdAllocator(4);
        Assert.Equal([0u, 1u, 2u], new[] { ids.Allocate(), ids.Allocate(), ids.Allocate() });
        ids.Release(1);
        ids.Release(0);
        Assert.Equal(3u, ids.Allocate()); // a never-used id before any released one
        Assert.Equal(1u, ids.Allocate()); // then oldest released first
        Assert.Equal(0u, ids.Allocate());
        Assert.Throws<Sluice.Datapath.Programming.DatapathFullException>(() => ids.Allocate());
    }

    [Fact]
    public void ClaimedIdsAreNeverHandedOut()
    {
        var ids = new IdAllocator(3);
        ids.Claim(0);
        ids.Claim(2);
        Assert.Equal(1u, ids.Allocate());
        Assert.Throws<InvalidOperationException>(() => ids.Claim(2));
        Assert.Throws<InvalidOperationException>(() => ids.Claim(3));
    }
}
