namespace Sluice.Datapath.Programming;

/// <summary>A map is at its configured capacity: the change cannot be programmed (nothing was changed).</summary>
public sealed class DatapathFullException(string message, string remedy = "Raise the limit in the config and restart sluiced.")
    : InvalidOperationException(message)
{
    /// <summary>What the operator can do about it.</summary>
    public string Remedy { get; } = remedy;
}
