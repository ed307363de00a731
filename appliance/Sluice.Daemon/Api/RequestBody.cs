using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Sluice.Model.State;

namespace Sluice.Daemon.Api;

/// <summary>Reads a JSON body strictly: size limit (413), syntax and unknown fields (400 with the path).</summary>
public static class RequestBody
{
    public static async Task<(T? Value, IResult? Error)> Read<T>(HttpRequest request) where T : class
    {
        var limit = request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize;
        if (request.ContentLength is { } length && limit is { } max && length > max)
        {
            return (null, TooLarge(max));
        }
        try
        {
            var value = await JsonSerializer.DeserializeAsync<T>(request.Body, ModelJson.Options, request.HttpContext.RequestAborted);
            return value is null
                ? (null, Results.ValidationProblem(new Dictionary<string, string[]> { ["body"] = ["must be a JSON object"] }))
                : (value, null);
        }
        catch (JsonException ex)
        {
            // A value of the wrong type or an unknown property names its field; broken JSON is the body's fault.
            var aboutAField = ex.Message.StartsWith("The JSON value could not be converted", StringComparison.Ordinal)
                || ex.Message.StartsWith("The JSON property", StringComparison.Ordinal);
            var path = !aboutAField || string.IsNullOrEmpty(ex.Path) || ex.Path == "$" ? "body" : ex.Path.TrimStart('$', '.');
            var message = ex.Message.Split(" Path:")[0];
            return (null, Results.ValidationProblem(new Dictionary<string, string[]> { [path] = [message] }));
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, TooLarge(limit ?? 0));
        }
    }

    private static IResult TooLarge(long limit) => Results.Problem(
        statusCode: StatusCodes.Status413PayloadTooLarge, title: "Payload Too Large",
        detail: $"the request body is larger than {limit} bytes (api.maxRequestBytes)");
}
