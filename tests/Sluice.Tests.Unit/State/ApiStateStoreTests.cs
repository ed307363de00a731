using Sluice.Model.Services;
using Sluice.Model.State;

namespace Sluice.Tests.Unit.State;

public sealed class ApiStateStoreTests : IDisposable
{
    private readonly string directory = Path.Combine(Path.GetTempPath(), $"sluice-state-{Guid.NewGuid():N}");

    private static readonly Dictionary<string, ServiceDefinition> Services = new()
    {
        ["web"] = new ServiceDefinition
        {
            Vip = "198.18.100.10", Port = 80, Mode = "dnat",
            Backends = [new BackendDefinition { Address = "198.18.2.2", Port = 8080, Weight = 3, State = "draining" }],
            HealthCheck = new HealthCheckDefinition { Type = "http", Path = "/healthz" },
        },
    };

    [Fact]
    public void WhatIsSavedIsLoadedBackExactly()
    {
        var store = new ApiStateStore(directory);
        Assert.Empty(store.Load()); // no file yet: the only case that gives an empty state
        store.Save(Services);
        var loaded = new ApiStateStore(directory).Load();
        Assert.Equal(ModelJson.Canonical(Services["web"]), ModelJson.Canonical(loaded["web"]));
        Assert.False(File.Exists(store.FilePath + ".tmp"));
    }

    [Fact]
    public void ASaveReplacesTheFileWholeByRename()
    {
        var store = new ApiStateStore(directory);
        store.Save(Services);
        var before = new FileInfo(store.FilePath);
        var inode = Inode(store.FilePath);
        store.Save(new Dictionary<string, ServiceDefinition>());
        Assert.NotEqual(inode, Inode(store.FilePath)); // a new file took the name: never rewritten in place
        Assert.Empty(store.Load());
        Assert.True(before.Exists);
    }

    [Theory]
    [InlineData("{ not json")]
    [InlineData("")]
    [InlineData("""{"version": 1}""")]
    [InlineData("""{"version": 99, "services": {}}""")]
    [InlineData("""{"version": 1, "services": {"web": {"vip": "nope", "port": 80}}}""")]
    [InlineData("""{"version": 1, "services": {"web": {"vip": "198.18.100.10", "port": 80, "surprise": 1}}}""")]
    public void ACorruptFileIsAClearErrorNeverAnEmptyState(string content)
    {
        Directory.CreateDirectory(directory);
        var store = new ApiStateStore(directory);
        File.WriteAllText(store.FilePath, content);
        var error = Assert.Throws<StateFileException>(() => store.Load());
        Assert.Contains(store.FilePath, error.Message);
    }

    private static string Inode(string path) => Sluice.Testing.Command.Run("stat", "-c", "%i", path).Trim();

    public void Dispose()
    {
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
