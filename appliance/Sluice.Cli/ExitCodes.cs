namespace Sluice.Cli;

/// <summary>What sluicectl's exit status means.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Refused = 1;      // the API answered with an error (4xx/5xx)
    public const int Usage = 2;        // bad command line or input file
    public const int Unreachable = 3;  // no API at the address, or no token
}

/// <summary>An error to print and exit with.</summary>
public sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
