FROM golang AS build
RUN go build -o /app .
FROM gcr.io/distroless/static-debian12:latest
COPY --from=build /app /app
USER 65532:65532
ENTRYPOINT ["/app"]
