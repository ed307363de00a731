using System.Diagnostics;

namespace Sluice.Testing;

/// <summary>Runs a tool (ip, ethtool, sysctl) and fails loudly, with its output, when it fails.</summary>
public static class Command
{
    public static string Run(string file, params string[] arguments)
    {
        var (exit, output) = TryRun(file, arguments);
        if (exit != 0)
        {
            throw new InvalidOperationException($"`{file} {string.Join(' ', arguments)}` exited {exit}: {output.Trim()}");
        }
        return output;
    }

    public static (int ExitCode, string Output) TryRun(string file, params string[] arguments)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException($"`{file}` is not installed ({ex.Message}); run scripts/bootstrap.sh", ex);
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"`{file} {string.Join(' ', arguments)}` did not finish in 60 s");
            }
            return (process.ExitCode, stdout.Result + stderr.Result);
        }
    }

    /// <summary>Runs a command inside a network namespace (ip netns exec).</summary>
    public static string InNamespace(string netns, string file, params string[] arguments) =>
        Run("ip", ["netns", "exec", netns, file, .. arguments]);
}
