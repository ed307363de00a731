using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sluice.Model.Configuration;

namespace Sluice.Cli;

/// <summary>Finds the API (config file, or --api and --token-file) and talks to it.</summary>
public sealed class ApiClient : IDisposable
{
    private readonly HttpClient http;

    private ApiClient(Uri baseAddress, string token)
    {
        http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
    }

    public static ApiClient Connect(CommandLine line)
    {
        var (address, tokenFile) = Locate(line);
        string token;
        try
        {
            token = File.ReadAllText(tokenFile).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CliException(ExitCodes.Unreachable, $"cannot read the API token {tokenFile}: {ex.Message}");
        }
        return new ApiClient(address, token);
    }

    public static (Uri Address, string TokenFile) Locate(CommandLine line)
    {
        if (line.Option("--api") is { } api)
        {
            var tokenFile = line.Option("--token-file") ?? throw new CliException(ExitCodes.Usage, "--api needs --token-file");
            return (new Uri(api.EndsWith('/') ? api : api + "/"), tokenFile);
        }
        var configPath = line.Option("--config") ?? "/etc/sluice/sluice.yaml";
        var config = ConfigLoader.Load(configPath);
        if (!config.IsValid)
        {
            throw new CliException(ExitCodes.Unreachable, $"cannot find the API through {configPath}: {string.Join("; ", config.Errors)}");
        }
        return (new Uri($"http://{config.Config!.Api.Listen}/"), config.Config.Api.TokenFile);
    }

    public async Task<(HttpStatusCode Status, JsonNode? Body)> Send(HttpMethod method, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path.TrimStart('/'));
        if (body is not null)
        {
            request.Content = new StringContent(body as string ?? JsonSerializer.Serialize(body, Sluice.Model.State.ModelJson.Options), Encoding.UTF8, "application/json");
        }
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request);
        }
        catch (HttpRequestException ex)
        {
            throw new CliException(ExitCodes.Unreachable, $"cannot reach sluiced at {http.BaseAddress}: {ex.Message}");
        }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync();
            var json = text.Length > 0 ? JsonNode.Parse(text) : null;
            if (!response.IsSuccessStatusCode)
            {
                throw new CliException(ExitCodes.Refused, Problem(response.StatusCode, json));
            }
            return (response.StatusCode, json);
        }
    }

    /// <summary>An RFC 7807 problem as one readable message, field errors included.</summary>
    private static string Problem(HttpStatusCode status, JsonNode? problem)
    {
        var text = new StringBuilder($"{(int)status} {problem?["title"]?.GetValue<string>() ?? status.ToString()}");
        if (problem?["detail"]?.GetValue<string>() is { } detail) text.Append(": ").Append(detail);
        if (problem?["errors"] is JsonObject errors)
        {
            foreach (var (field, messages) in errors)
            {
                text.Append("\n  ").Append(field).Append(": ").Append(string.Join("; ", messages!.AsArray().Select(m => m!.GetValue<string>())));
            }
        }
        return text.ToString();
    }

    public void Dispose() => http.Dispose();
}
