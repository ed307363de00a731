namespace Sluice.Testing;

/// <summary>
/// A network namespace owned by one test run: a unique name (so parallel runs cannot
/// collide), deleted on dispose whether the test passed or not. Deleting the namespace
/// also deletes the veths and XDP attachments inside it.
/// </summary>
public sealed class TestNamespace : IDisposable
{
    public TestNamespace(string role)
    {
        Name = $"sl-{role}-{Environment.ProcessId % 100000}-{Guid.NewGuid().ToString("N")[..6]}";
        Command.Run("ip", "netns", "add", Name);
        Exec("ip", "link", "set", "lo", "up");
    }

    public string Name { get; }

    public string Exec(string file, params string[] arguments) => Command.InNamespace(Name, file, arguments);

    public void Sysctl(string key, string value) => Exec("sysctl", "-qw", $"{key}={value}");

    /// <summary>Many `ip` commands (links, addresses, neighbours) in one `ip -batch` call.</summary>
    public void IpBatch(IEnumerable<string> commands)
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(file, commands);
            Command.Run("ip", "-netns", Name, "-batch", file);
        }
        finally
        {
            File.Delete(file);
        }
    }

    public void Dispose() => Command.TryRun("ip", "netns", "del", Name);
}
