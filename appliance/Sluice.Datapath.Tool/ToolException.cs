namespace Sluice.Datapath.Tool;

/// <summary>A usage or input error: printed as is, exit code 2.</summary>
public sealed class ToolException(string message) : Exception(message);
