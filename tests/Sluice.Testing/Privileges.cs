using Xunit;

namespace Sluice.Testing;

/// <summary>
/// Datapath and end-to-end tests need root. Outside CI they skip and say why; under
/// CI=true they never skip, so a missing privilege or tool fails the run.
/// </summary>
public static class Privileges
{
    public static bool IsRoot => Tmds.Linux.LibC.geteuid() == 0;

    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public static string? SkipReason => IsRoot || IsCi
        ? null
        : "needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN) to load XDP programs and create network namespaces; run the tests as root (under CI=true this fails instead of skipping)";
}

/// <summary>A fact that needs root; see <see cref="Privileges"/>.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        Skip = Privileges.SkipReason;
    }
}

/// <summary>A theory that needs root; see <see cref="Privileges"/>.</summary>
public sealed class RootTheoryAttribute : TheoryAttribute
{
    public RootTheoryAttribute()
    {
        Skip = Privileges.SkipReason;
    }
}

/// <summary>
/// A fact that needs a tool on PATH but no privileges. Outside CI a missing tool skips and
/// names the package; under CI=true the test runs and fails on the missing tool.
/// </summary>
public sealed class ToolFactAttribute : FactAttribute
{
    public ToolFactAttribute(string tool, string package)
    {
        if (!Privileges.IsCi && !OnPath(tool))
        {
            Skip = $"needs `{tool}` (Debian package {package}; scripts/bootstrap.sh installs it)";
        }
    }

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, tool)));
}
