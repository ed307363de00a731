using System.Text.Json;
using Sluice.Model.Services;
using Sluice.Model.Validation;

namespace Sluice.Model.State;

/// <summary>The API-owned services could not be read back: say where and why, never start empty.</summary>
public sealed class StateFileException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Persists the services owned by the API in the state directory. Writes are atomic:
/// a temporary file is written and fsynced, then renamed over the old one, so a crash
/// leaves either the old or the new file, never half of one.
/// </summary>
public sealed class ApiStateStore(string stateDirectory)
{
    public const int FormatVersion = 1;

    public string FilePath { get; } = Path.Combine(stateDirectory, "api-services.json");

    private sealed record StateFile(int Version, Dictionary<string, ServiceDefinition> Services);

    public void Save(IReadOnlyDictionary<string, ServiceDefinition> services)
    {
        Directory.CreateDirectory(stateDirectory);
        var temporary = FilePath + ".tmp";
        var bytes = JsonSerializer.SerializeToUtf8Bytes(new StateFile(FormatVersion, new(services)), ModelJson.Options);
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, FilePath, overwrite: true);
    }

    /// <summary>The saved services; empty only when no state file exists yet.</summary>
    public IReadOnlyDictionary<string, ServiceDefinition> Load()
    {
        if (!File.Exists(FilePath))
        {
            return new Dictionary<string, ServiceDefinition>();
        }
        StateFile? state;
        try
        {
            state = JsonSerializer.Deserialize<StateFile>(File.ReadAllBytes(FilePath), ModelJson.Options);
        }
        catch (JsonException ex)
        {
            throw new StateFileException($"the API state file {FilePath} is corrupt ({ex.Message}); fix or move it aside to start without API-owned services", ex);
        }
        if (state is null || state.Services is null)
        {
            throw new StateFileException($"the API state file {FilePath} is empty or has no services; fix or move it aside");
        }
        if (state.Version != FormatVersion)
        {
            throw new StateFileException($"the API state file {FilePath} has format version {state.Version}; this sluiced reads version {FormatVersion}");
        }
        var errors = new ValidationErrors();
        foreach (var (name, service) in state.Services)
        {
            ServiceValidator.ValidateName(name, name, errors);
            ServiceValidator.Validate(service, name, errors);
        }
        if (errors.Any)
        {
            throw new StateFileException($"the API state file {FilePath} holds invalid services: {string.Join("; ", errors.All)}");
        }
        return state.Services;
    }
}
