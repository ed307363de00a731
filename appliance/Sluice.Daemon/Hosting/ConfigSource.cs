using Sluice.Model.Configuration;

namespace Sluice.Daemon.Hosting;

/// <summary>The config file and the last valid version of it.</summary>
public sealed class ConfigSource(string path, SluiceConfig initial)
{
    public string Path { get; } = path;

    public SluiceConfig Current { get; private set; } = initial;

    /// <summary>Reads the file again without taking it into force.</summary>
    public ConfigResult Read() => ConfigLoader.Load(Path);

    /// <summary>Takes a valid config into force, once its services are programmed.</summary>
    public void Accept(SluiceConfig config) => Current = config;
}
