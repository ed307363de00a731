using System.Text.Json;

namespace Sluice.Cli.Commands;

internal static class Output
{
    public static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
}
