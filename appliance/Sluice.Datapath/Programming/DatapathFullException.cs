namespace Sluice.Datapath.Programming;

/// <summary>A map is at its configured capacity: the change cannot be programmed (nothing was changed).</summary>
public sealed class DatapathFullException(string message) : InvalidOperationException(message);
