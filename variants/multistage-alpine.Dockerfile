# The Node.js major (20, the article's): `make bench NODE=24` builds on Node 24.
ARG NODE=20
# Stage 1: Builder
FROM node:${NODE}-alpine AS builder
WORKDIR /app
COPY package*.json ./
RUN npm ci --include=dev
COPY . .
RUN npm run build

# Stage 2: Production runner
FROM node:${NODE}-alpine AS runner
WORKDIR /app
COPY package*.json ./
RUN npm ci --omit=dev
COPY --from=builder /app/dist ./dist
EXPOSE 3000
CMD ["node", "dist/index.js"]
